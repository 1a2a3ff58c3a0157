/**
 * What a client asks before anything else: which spec versions the server
 * speaks, where its client API lives (.well-known, from configuration only),
 * and what it lets users change (capabilities).
 */
import { SUPPORTED_ROOM_VERSIONS } from '../../../core/index.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { jsonResponse } from '../../http/response.js';
import { notFound } from '../../http/errors.js';
import type { AccountsDeps } from './common.js';

/**
 * Spec versions this server implements. Clients pick endpoints by these
 * (matrix-js-sdk uses v1.11+ for authenticated media, Hydrogen and matrix-nio
 * fall back to r0), so only versions whose client API we serve are listed.
 */
export const SPEC_VERSIONS = [
  'r0.0.1', 'r0.1.0', 'r0.2.0', 'r0.3.0', 'r0.4.0', 'r0.5.0', 'r0.6.0', 'r0.6.1',
  'v1.1', 'v1.2', 'v1.3', 'v1.4', 'v1.5', 'v1.6', 'v1.7', 'v1.8', 'v1.9', 'v1.10', 'v1.11', 'v1.12',
];

export function serverInfoRoutes({ services }: AccountsDeps): RouteDefinition[] {
  const { ctx } = services;
  return [
    // GET /_matrix/client/versions (spec: "Client-Server API versions"). The answer is the same for
    // everyone, so a token is not even looked at: a stale one must not make discovery fail.
    {
      method: 'GET',
      paths: ['/_matrix/client/versions'],
      auth: 'none',
      handler: async () => ({ versions: SPEC_VERSIONS, unstable_features: {} }),
    },
    // GET /.well-known/matrix/client (spec: "Well-known URIs"): the configured public base URL, never the
    // request's Host; without one, 404, which the spec defines as "no discovery information".
    {
      method: 'GET',
      paths: ['/.well-known/matrix/client'],
      auth: 'none',
      handler: async () => {
        const baseUrl = ctx.config.publicBaseUrl;
        if (baseUrl === undefined) throw notFound('No client discovery information is published');
        return jsonResponse({ 'm.homeserver': { base_url: baseUrl } });
      },
    },
    // GET /_matrix/client/v3/capabilities (spec: "Capabilities negotiation")
    clientRoute('GET', '/capabilities', 'required', async () => ({
      capabilities: {
        'm.change_password': { enabled: true },
        'm.room_versions': {
          default: ctx.config.defaultRoomVersion,
          available: Object.fromEntries(SUPPORTED_ROOM_VERSIONS.map((v) => [v, 'stable'])),
        },
        'm.set_displayname': { enabled: true },
        'm.set_avatar_url': { enabled: true },
        'm.3pid_changes': { enabled: false },
        'm.get_login_token': { enabled: false },
      },
    })),
    // GET /_matrix/client/v3/voip/turnServer (spec: "Voice over IP"): no TURN server is configured, and
    // Synapse's answer for that is an empty object (matrix-js-sdk asks at startup).
    clientRoute('GET', '/voip/turnServer', 'required', async () => ({})),
  ];
}

/**
 * Routes of the end-to-end encryption area of the client-server API (spec:
 * "End-to-end encryption" and "Send-to-Device messaging"): key upload, query
 * and claim, device list changes, cross-signing, to-device messages and the
 * room key backup version probe. The logic lives in src/homeserver/keys;
 * handlers here check the request and shape the response.
 */
import { clientRoute } from '../../http/router.js';
import { invalidParam, missingParam, notFound } from '../../http/errors.js';
import type { RouteModule } from '../../services.js';
import { claimKeys, parseKeysClaim, parseKeysQuery, parseKeysUpload, queryKeys, uploadKeys } from '../../keys/device-keys.js';
import {
  deviceSigningState,
  parseDeviceSigningUpload,
  parseSignaturesUpload,
  uploadDeviceSigningKeys,
  uploadSignatures,
} from '../../keys/cross-signing.js';
import { deviceListChanges, streamPositionOfToken } from '../../keys/device-lists.js';
import { parseSendToDevice, sendToDevice } from '../../keys/to-device.js';
import { InteractiveAuth } from '../../accounts/uia.js';

export const e2eeRoutes: RouteModule = ({ ctx, limits, federation }) => {
  // Replacing cross-signing keys asks for the password again (its sessions are this module's own).
  const uia = new InteractiveAuth(ctx);
  return [
    // POST /_matrix/client/v3/keys/upload (spec: "Key management API")
    clientRoute('POST', '/keys/upload', 'required', async (req) => {
      const body = parseKeysUpload(await req.json(), req.requester);
      return uploadKeys(ctx, req.requester, body);
    }),

    // POST /_matrix/client/v3/keys/query
    clientRoute('POST', '/keys/query', 'required', async (req) => {
      const wanted = parseKeysQuery(await req.json());
      return federation.queries.queryKeys(await queryKeys(ctx, req.requester, wanted), wanted, req.requester.userId);
    }),

    // POST /_matrix/client/v3/keys/claim
    clientRoute('POST', '/keys/claim', 'required', async (req) => {
      const wanted = parseKeysClaim(await req.json());
      return federation.queries.claimKeys(await claimKeys(ctx, wanted), wanted);
    }),

    // GET /_matrix/client/v3/keys/changes?from=&to= (positions are /sync tokens)
    clientRoute('GET', '/keys/changes', 'required', async (req) => {
      const fromToken = req.query.get('from');
      if (fromToken === null) throw missingParam('Missing "from"');
      const from = streamPositionOfToken(fromToken);
      if (from === undefined) throw invalidParam('"from" is not a valid sync token');
      const toToken = req.query.get('to');
      const to = toToken === null ? undefined : streamPositionOfToken(toToken);
      if (toToken !== null && to === undefined) throw invalidParam('"to" is not a valid sync token');
      return ctx.storage.read((txn) => deviceListChanges(txn, req.requester.userId, from, to));
    }),

    // POST /_matrix/client/v3/keys/device_signing/upload (spec: "Cross-signing"; UIA unless first upload)
    clientRoute(
      'POST',
      '/keys/device_signing/upload',
      'required',
      async (req) => {
        const body = await req.json();
        const keys = parseDeviceSigningUpload(body, req.requester.userId);
        const { hasMaster, changes } = await deviceSigningState(ctx, req.requester.userId, keys);
        if (hasMaster && !changes) return {};
        // Setting up cross-signing needs no UIA (as in Synapse); replacing keys needs the password.
        if (hasMaster) {
          const user = await ctx.storage.read((txn) => txn.users.get(req.requester.userId));
          await uia.check({
            auth: body.auth,
            flows: [{ stages: ['m.login.password'] }],
            operation: 'POST /keys/device_signing/upload',
            userId: req.requester.userId,
            passwordHash: user?.passwordHash,
            serverName: ctx.serverName,
          });
        }
        await uploadDeviceSigningKeys(ctx, req.requester.userId, keys);
        return {};
      },
      { prefixes: ['/_matrix/client/v3', '/_matrix/client/r0', '/_matrix/client/unstable'] },
    ),

    // POST /_matrix/client/v3/keys/signatures/upload
    clientRoute(
      'POST',
      '/keys/signatures/upload',
      'required',
      async (req) => uploadSignatures(ctx, req.requester, parseSignaturesUpload(await req.json())),
      { prefixes: ['/_matrix/client/v3', '/_matrix/client/r0', '/_matrix/client/unstable'] },
    ),

    // PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId} (spec: "Send-to-Device messaging")
    clientRoute('PUT', '/sendToDevice/{eventType}/{txnId}', 'required', async (req) => {
      // Per sending device, as the SDKs queue to-device per device (user IDs hold no spaces).
      limits.take('toDevice', `${req.requester.userId} ${req.requester.deviceId}`);
      const messages = parseSendToDevice(await req.json());
      await sendToDevice(ctx, req.requester, req.params.eventType!, req.params.txnId!, messages);
      return {};
    }),

    // GET /_matrix/client/v3/room_keys/version (spec: "Server-side key backups"; none are kept yet)
    clientRoute('GET', '/room_keys/version', 'required', async () => {
      throw notFound('No current backup version');
    }),
  ];
};

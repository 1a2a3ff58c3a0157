/**
 * A homeserver in process for tests: memory storage, a fixed signing seed per
 * server name, and small helpers to call the client-server API the way an HTTP
 * client would (a real `Request` in, a real `Response` out).
 */
import { createSigner, type Signer } from '../../src/core/index.js';
import { createHomeserver, type Clock, type Homeserver, type HomeserverSettings } from '../../src/homeserver/index.js';
import type { Logger } from '../../src/homeserver/context.js';
import { createMemoryStorage } from '../../src/storage/memory/index.js';
import type { Storage } from '../../src/storage/types.js';

export interface TestServer {
  homeserver: Homeserver;
  storage: Storage;
  serverName: string;
  baseUrl: string;
  /** Calls the API; `body` objects are sent as JSON, strings and bytes as they are. */
  call(method: string, path: string, body?: unknown, accessToken?: string, headers?: Record<string, string>): Promise<{ status: number; json: any; response: Response }>;
  /** Registers a user (m.login.dummy) and returns its user ID, access token and device ID. */
  register(localpart: string, password?: string): Promise<{ userId: string; accessToken: string; deviceId: string }>;
  close(): Promise<void>;
}

/**
 * Password hashing cost in tests: 600,000 iterations (the default) is a third of a second per
 * registration, so tests use this unless they set `passwordHashIterations` themselves (the default and
 * the rehash on login are tested in tests/homeserver/accounts/passwords.test.ts).
 */
export const TEST_PASSWORD_HASH_ITERATIONS = 1000;

/**
 * Tests that send hundreds of messages as one user in a second are about something else than
 * rc_message; every other limit keeps its default. Rate-limit tests pass their own `rateLimits`.
 */
const TEST_RATE_LIMITS: HomeserverSettings['rateLimits'] = { message: false };

export async function startTestServer(
  options: { storage?: Storage; config?: HomeserverSettings; serverName?: string; clock?: Clock; log?: Logger; signer?: Signer } = {},
): Promise<TestServer> {
  const serverName = options.signer?.serverName ?? options.serverName ?? 'hs.test';
  const seed = new Uint8Array(32).fill(serverName.length);
  const signer = options.signer ?? (await createSigner(seed, serverName, 'ed25519:1'));
  const storage = options.storage ?? createMemoryStorage();
  const config = {
    passwordHashIterations: TEST_PASSWORD_HASH_ITERATIONS,
    ...options.config,
    rateLimits: { ...TEST_RATE_LIMITS, ...options.config?.rateLimits },
  };
  const homeserver = createHomeserver({ storage, signer, config, clock: options.clock, log: options.log });
  const baseUrl = `http://${serverName}`;
  const call: TestServer['call'] = async (method, path, body, accessToken, headers = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (accessToken) (init.headers as Record<string, string>).authorization = `Bearer ${accessToken}`;
    if (body !== undefined) {
      init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as BodyInit) : JSON.stringify(body);
      if (!(body instanceof Uint8Array) && !headers['content-type']) (init.headers as Record<string, string>)['content-type'] = 'application/json';
    }
    const response = await homeserver.handleClient(new Request(baseUrl + path, init));
    const text = await response.clone().text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: response.status, json, response };
  };
  return {
    homeserver,
    storage,
    serverName,
    baseUrl,
    call,
    async register(localpart, password = 'correct horse battery staple') {
      const { status, json } = await call('POST', '/_matrix/client/v3/register', {
        username: localpart,
        password,
        auth: { type: 'm.login.dummy' },
      });
      if (status !== 200) throw new Error(`register ${localpart}: ${status} ${JSON.stringify(json)}`);
      return { userId: json.user_id, accessToken: json.access_token, deviceId: json.device_id };
    },
    async close() {
      await homeserver.close();
      if (!options.storage) await storage.close();
    },
  };
}

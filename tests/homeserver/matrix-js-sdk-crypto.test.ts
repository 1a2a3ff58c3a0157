/**
 * End-to-end encryption between two users of one in-process homeserver,
 * driven by matrix-js-sdk 43 with its Rust crypto (matrix-sdk-crypto-wasm):
 * device keys uploaded, one-time keys claimed, Olm sessions and Megolm room
 * keys delivered as to-device messages through /sync, cross-signing set up,
 * and each user decrypting the other's messages in an encrypted room.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClientEvent,
  createClient,
  EventType,
  MatrixEvent,
  MsgType,
  type MatrixClient,
} from 'matrix-js-sdk';
import { logger, type Logger } from 'matrix-js-sdk/lib/logger.js';
import { startTestServer, type TestServer } from './harness.js';

const PASSWORD = 'correct horse battery staple';
let server: TestServer;
const clients: MatrixClient[] = [];

/** Errors only: the SDK logs every sync and crypto step at debug level. */
const quietLogger: Logger = {
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error: (...msg: unknown[]) => console.error(...msg),
  getChild: () => quietLogger,
};

/**
 * fetch() into the in-process server. Like real fetch it rejects as soon as
 * the caller aborts: stopClient aborts the pending /sync long-poll, and a
 * response processed after that would reach an already freed crypto machine.
 */
function inProcessFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const signal = init?.signal;
  const response = server.homeserver.handleClient(new Request(input, init));
  if (!signal) return response;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new DOMException('The operation was aborted', 'AbortError'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    response.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Resolves when `check` returns a value other than undefined, re-checking on every client event and every 50 ms. */
async function waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startClient(localpart: string): Promise<MatrixClient> {
  const { userId, accessToken, deviceId } = await server.register(localpart, PASSWORD);
  const client = createClient({
    baseUrl: server.baseUrl,
    userId,
    accessToken,
    deviceId,
    fetchFn: inProcessFetch,
    logger: quietLogger,
  });
  clients.push(client);
  await client.initRustCrypto({ useIndexedDB: false });
  const prepared = new Promise<void>((resolve) => {
    const onSync = (state: string) => {
      if (state === 'PREPARED' || state === 'SYNCING') {
        client.off(ClientEvent.Sync, onSync);
        resolve();
      }
    };
    client.on(ClientEvent.Sync, onSync);
  });
  await client.startClient({ initialSyncLimit: 20 });
  await prepared;
  return client;
}

/** The clear text of the message with `body` in the room, once the client has decrypted it. */
async function decryptedBody(client: MatrixClient, roomId: string, body: string): Promise<MatrixEvent> {
  return waitFor(`${client.getUserId()} to decrypt "${body}"`, async () => {
    const room = client.getRoom(roomId);
    for (const event of room?.getLiveTimeline().getEvents() ?? []) {
      if (event.getWireType() !== EventType.RoomMessageEncrypted) continue;
      if (event.isBeingDecrypted() || event.isDecryptionFailure()) {
        // A failure may be a room key still in flight: ask again.
        if (event.isDecryptionFailure()) await client.decryptEventIfNeeded(event, { isRetry: true });
        continue;
      }
      if (event.getContent().body === body) return event;
    }
    return undefined;
  });
}

describe('matrix-js-sdk 43 with Rust crypto against the in-process homeserver', () => {
  let alice: MatrixClient;
  let bob: MatrixClient;
  let roomId: string;

  beforeAll(async () => {
    // The SDK's logger is loglevel underneath; keep test output to errors.
    (logger as unknown as { setLevel(level: string): void }).setLevel('error');
    server = await startTestServer();
    alice = await startClient('alice');
    bob = await startClient('bob');
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.stopClient();
    await server?.close();
  });

  it('uploads device and one-time keys on start', async () => {
    const keys = await waitFor('Alice to upload her keys', async () => {
      const res = await server.call('POST', '/_matrix/client/v3/keys/query', { device_keys: { [alice.getUserId()!]: [] } }, bob.getAccessToken()!);
      const devices = res.json.device_keys[alice.getUserId()!];
      return devices && devices[alice.getDeviceId()!] ? devices[alice.getDeviceId()!] : undefined;
    });
    expect(keys.algorithms).toContain('m.megolm.v1.aes-sha2');
    const counts = await server.storage.read((txn) => txn.oneTimeKeys.counts(alice.getUserId()!, alice.getDeviceId()!));
    expect(counts.signed_curve25519).toBeGreaterThan(0);
  });

  it('sets up cross-signing (device_signing/upload and signatures/upload)', async () => {
    await alice.getCrypto()!.bootstrapCrossSigning({
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: alice.getUserId()! }, password: PASSWORD });
      },
    });
    // The device's new signature comes back through /sync device_lists.changed and a fresh /keys/query.
    await waitFor('Alice to see her device cross-signed', async () => {
      const status = await alice.getCrypto()!.getDeviceVerificationStatus(alice.getUserId()!, alice.getDeviceId()!);
      return status?.crossSigningVerified ? true : undefined;
    });
    const res = await server.call('POST', '/_matrix/client/v3/keys/query', { device_keys: { [alice.getUserId()!]: [] } }, bob.getAccessToken()!);
    expect(res.json.master_keys[alice.getUserId()!]).toBeDefined();
    expect(res.json.self_signing_keys[alice.getUserId()!]).toBeDefined();
    // Bob's client finds Alice's cross-signing identity through /keys/query.
    expect(await bob.getCrypto()!.userHasCrossSigningKeys(alice.getUserId()!, true)).toBe(true);
  });

  it('creates an encrypted room that Bob joins', async () => {
    const created = await alice.createRoom({
      name: 'secret',
      invite: [bob.getUserId()!],
      initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
    });
    roomId = created.room_id;
    await waitFor('Bob to see the invite', () => (bob.getRoom(roomId)?.getMyMembership() === 'invite' ? true : undefined));
    await bob.joinRoom(roomId);
    await waitFor('Alice to see Bob join', () => (alice.getRoom(roomId)?.getMember(bob.getUserId()!)?.membership === 'join' ? true : undefined));
    expect(await alice.getCrypto()!.isEncryptionEnabledInRoom(roomId)).toBe(true);
    await waitFor('Bob to see the room as encrypted', async () => ((await bob.getCrypto()!.isEncryptionEnabledInRoom(roomId)) ? true : undefined));
  });

  it("lets Bob decrypt Alice's message", async () => {
    await alice.sendMessage(roomId, { msgtype: MsgType.Text, body: 'hello from alice' });
    const event = await decryptedBody(bob, roomId, 'hello from alice');
    expect(event.getSender()).toBe(alice.getUserId());
    expect(event.getWireType()).toBe(EventType.RoomMessageEncrypted);
    expect(event.getWireContent().algorithm).toBe('m.megolm.v1.aes-sha2');
  });

  it("lets Alice decrypt Bob's reply", async () => {
    await bob.sendMessage(roomId, { msgtype: MsgType.Text, body: 'hello from bob' });
    const event = await decryptedBody(alice, roomId, 'hello from bob');
    expect(event.getSender()).toBe(bob.getUserId());
  });

  it('stores only ciphertext on the server', async () => {
    const events = await server.storage.read((txn) => txn.timeline.range(roomId, { dir: 'b', limit: 50 }));
    const messages = events.filter((r) => r.event.type === 'm.room.encrypted');
    expect(messages.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(events)).not.toContain('hello from');
  });
});

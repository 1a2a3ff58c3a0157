// SessionState over a session host in Node that does what src/app/boot.ts does in a tab, on a real homeserver
// in process: one profile runs in one "tab" at a time (a shared holder stands for the Web Lock), the user is
// registered once and its credentials kept, a second tab is told the profile is locked and can take over,
// and the first tab hears that it was taken over.
import { afterEach, describe, expect, it } from 'vitest';
import type { MatrixClient } from 'matrix-js-sdk';
import { startTestServer, type TestServer } from '../../homeserver/harness.js';
import type { ConnectionSource, SessionHost, StartOutcome } from '../../../src/ui/state/host.js';
import { SessionState } from '../../../src/ui/state/session.svelte.js';
import { ConnectionState } from '../../../src/ui/state/connection.svelte.js';
import { startClientFor } from './support.js';

interface Profile {
  holder?: NodeHost;
  credentials?: { userId: string; accessToken: string; deviceId: string };
}

const clients: MatrixClient[] = [];
let server: TestServer | undefined;

afterEach(async () => {
  for (const client of clients.splice(0)) client.stopClient();
  await server?.close();
  server = undefined;
});

class FakePeers implements ConnectionSource {
  count = 0;
  readonly events = new EventTarget();
  peerCount = () => this.count;
  networkStarted = () => true;
  set(count: number) {
    this.count = count;
    this.events.dispatchEvent(new Event('change'));
  }
}

class NodeHost implements SessionHost {
  readonly profile = 'p';
  readonly peers = new FakePeers();
  #takenOver: Array<() => void> = [];
  #client: MatrixClient | undefined;
  constructor(readonly shared: Profile, readonly hs: TestServer) {}

  async start(): Promise<StartOutcome> {
    if (this.shared.holder && this.shared.holder !== this) return { kind: 'locked' };
    this.shared.holder = this;
    const base = { kind: 'running' as const, serverName: this.hs.serverName, connection: this.peers };
    if (!this.shared.credentials) return base;
    return { ...base, client: await this.#startClient() };
  }

  async register(displayName: string): Promise<MatrixClient> {
    this.shared.credentials ??= await this.hs.register(displayName.toLowerCase());
    const client = await this.#startClient();
    await client.setDisplayName(displayName);
    return client;
  }

  async takeOver(): Promise<void> {
    const other = this.shared.holder;
    if (other && other !== this) other.stop();
  }

  onTakenOver(listener: () => void): void {
    this.#takenOver.push(listener);
  }

  stop(): void {
    this.#client?.stopClient();
    this.shared.holder = undefined;
    for (const listener of this.#takenOver) listener();
  }

  async #startClient(): Promise<MatrixClient> {
    this.#client = await startClientFor(this.hs, this.shared.credentials!);
    clients.push(this.#client);
    return this.#client;
  }
}

/** A host of a registered user's cold start, as src/app/boot.ts answers it: the API at once, the client when the test says. */
function coldStartHost(hs: TestServer, userId: string, authorization: string | undefined) {
  const client = Promise.withResolvers<MatrixClient>();
  const takenOver: Array<() => void> = [];
  const headers: HeadersInit = authorization ? { authorization } : {};
  const host: SessionHost = {
    profile: 'p',
    start: async () => ({
      kind: 'running',
      serverName: hs.serverName,
      connection: new FakePeers(),
      signedIn: { userId, api: (path) => hs.homeserver.handleClient(new Request(hs.baseUrl + path, { headers })), client: client.promise },
    }),
    register: () => Promise.reject(new Error('unreachable')),
    takeOver: () => Promise.resolve(),
    onTakenOver: (listener) => void takenOver.push(listener),
  };
  return { host, client, takenOver };
}

describe('SessionState', () => {
  it('onboards once, then a second tab is locked out, takes over, and comes back as the same user and device', async () => {
    server = await startTestServer();
    const profile: Profile = {};
    const first = new SessionState(new NodeHost(profile, server));
    expect(first.phase).toBe('starting');
    await first.start();
    expect(first.phase).toBe('onboarding');
    expect(first.serverName).toBe(server.serverName);
    await first.onboard('   ');
    expect(first.phase).toBe('onboarding');
    await first.onboard('Dana');
    expect(first.phase).toBe('ready');
    expect(first.userId).toBe(`@dana:${server.serverName}`);
    await expect.poll(() => first.displayName).toBe('Dana');
    const deviceId = first.client!.getDeviceId();

    const second = new SessionState(new NodeHost(profile, server));
    await second.start();
    expect(second.phase).toBe('locked');
    await second.takeOver();
    expect(first.phase).toBe('taken-over');
    expect(first.client).toBeUndefined();
    expect(second.phase).toBe('ready');
    expect(second.userId).toBe(first.userId);
    expect(second.client!.getDeviceId()).toBe(deviceId);
  });

  it('is ready on a cold start before the client, with the room list read from the server, and takes the client when it comes', async () => {
    server = await startTestServer();
    const user = await server.register('eve');
    const cold = coldStartHost(server, user.userId, `Bearer ${user.accessToken}`);
    const session = new SessionState(cold.host);
    await session.start();
    expect(session.phase).toBe('ready');
    expect(session.userId).toBe(user.userId);
    expect(session.client).toBeUndefined();
    expect(await session.provisionalRooms).toEqual([]);
    const client = await startClientFor(server, user);
    clients.push(client);
    cold.client.resolve(client);
    await expect.poll(() => session.client).toBe(client);
    expect(session.phase).toBe('ready');
  });

  it('drops a client that comes after the tab was taken over', async () => {
    server = await startTestServer();
    const user = await server.register('eve');
    const cold = coldStartHost(server, user.userId, undefined);
    const session = new SessionState(cold.host);
    await session.start();
    expect(session.phase).toBe('ready');
    // Unauthenticated: the list could not be read, which is no failure (the client's list comes anyway).
    await expect(session.provisionalRooms).rejects.toThrow('401');
    for (const listener of cold.takenOver) listener();
    cold.client.reject(new Error('the profile was taken over by another tab'));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(session.phase).toBe('taken-over');
    expect(session.client).toBeUndefined();
  });

  it('reports a failed start with its reason', async () => {
    const host: SessionHost = {
      profile: 'broken',
      start: () => Promise.reject(new Error('IndexedDB is not available')),
      register: () => Promise.reject(new Error('unreachable')),
      takeOver: () => Promise.resolve(),
      onTakenOver: () => {},
    };
    const session = new SessionState(host);
    await session.start();
    expect(session.phase).toBe('failed');
    expect(session.error).toBe('IndexedDB is not available');
  });
});

describe('ConnectionState', () => {
  it('follows the peer count and says so in its summary', () => {
    const peers = new FakePeers();
    const state = new ConnectionState(peers);
    expect(state.summary).toBe('0 peers online');
    peers.set(1);
    expect(state.summary).toBe('1 peer online');
    peers.set(3);
    expect(state.peers).toBe(3);
    state.dispose();
    peers.set(5);
    expect(state.peers).toBe(3);
  });
});

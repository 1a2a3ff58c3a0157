// State-class tests in Node: a real homeserver in process (memory storage, tests/homeserver/harness.ts) and
// matrix-js-sdk clients whose fetchFn calls its handleClient, as src/app/boot.ts wires them in a tab; and a
// fresh server per test with the clients and states a test made stopped and disposed after it.
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import { logger } from 'matrix-js-sdk/lib/logger.js';
import type { Logger as LogLevelLogger } from 'loglevel';
import { afterEach, beforeEach } from 'vitest';
import { startTestServer, type TestServer } from '../../homeserver/harness.js';
import { RoomsState } from '../../../src/ui/state/rooms.svelte.js';
import { createRealSim, type RealSim } from '../../p2p/simulation/real-harness.js';

// The SDK logs every request at info level; keep test output readable.
(logger as unknown as LogLevelLogger).setLevel('warn');

export function fetchFnOf(server: TestServer): typeof fetch {
  // A streamed body (an upload whose progress counts the bytes the server reads) must be half duplex.
  return ((input: RequestInfo | URL, init?: RequestInit) =>
    server.homeserver.handleClient(new Request(input, init?.body instanceof ReadableStream ? { ...init, duplex: 'half' } as RequestInit : init))) as typeof fetch;
}

/** A started client of `localpart` (registered here), with its first sync done. */
export async function startedClient(server: TestServer, localpart: string, displayName?: string): Promise<MatrixClient> {
  const user = await server.register(localpart);
  return startClientFor(server, user);
}

export async function startClientFor(server: TestServer, user: { userId: string; accessToken: string; deviceId: string }, displayName?: string): Promise<MatrixClient> {
  // As src/app/boot.ts makes it: timelineSupport keeps the timelines a limited sync leaves behind, joined when pagination meets them.
  const client = createClient({ baseUrl: server.baseUrl, fetchFn: fetchFnOf(server), userId: user.userId, accessToken: user.accessToken, deviceId: user.deviceId, timelineSupport: true });
  if (displayName) await client.setDisplayName(displayName);
  const prepared = new Promise<void>((resolve) => {
    const onSync = (state: string) => {
      if (state !== 'PREPARED') return;
      client.off('sync' as never, onSync as never);
      resolve();
    };
    client.on('sync' as never, onSync as never);
  });
  await client.startClient({ initialSyncLimit: 10, pendingEventOrdering: 'detached' as never });
  await prepared;
  return client;
}

/** Polls `probe` until it holds (the client's sync is asynchronous). */
export async function eventually(what: string, probe: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface Disposable {
  dispose(): void;
}

export interface ServerPerTest {
  /** This test's server; set once beforeEach has run. */
  readonly server: TestServer;
  /** Clients stopped after the test (emptied before each test). */
  readonly clients: MatrixClient[];
  /** States disposed after the test, before the clients stop (emptied before each test). */
  readonly states: Disposable[];
  /** Registers `state` for disposal after the test and returns it. */
  keep<T extends Disposable>(state: T): T;
  /** A started client of a new user `localpart` named `displayName`, stopped after the test. */
  client(localpart: string, displayName: string): Promise<MatrixClient>;
  /** Such a client with its RoomsState, disposed after the test. */
  user(localpart: string, displayName: string): Promise<{ client: MatrixClient; rooms: RoomsState }>;
}

/** Starts a homeserver in process before each test of the file and tears it and what the test made down after it. */
export function serverPerTest(): ServerPerTest {
  let server: TestServer | undefined;
  const clients: MatrixClient[] = [];
  const states: Disposable[] = [];

  beforeEach(async () => {
    server = await startTestServer();
    clients.length = 0;
    states.length = 0;
  });
  afterEach(async () => {
    for (const state of states) state.dispose();
    for (const client of clients) client.stopClient();
    await server?.close();
  });

  const running = (): TestServer => {
    if (!server) throw new Error('the test server is not started yet (use it inside a test)');
    return server;
  };
  const keep = <T extends Disposable>(state: T): T => {
    states.push(state);
    return state;
  };
  const client = async (localpart: string, displayName: string): Promise<MatrixClient> => {
    const started = await startedClient(running(), localpart);
    await started.setDisplayName(displayName);
    clients.push(started);
    return started;
  };
  return {
    get server() {
      return running();
    },
    clients,
    states,
    keep,
    client,
    async user(localpart, displayName) {
      const started = await client(localpart, displayName);
      return { client: started, rooms: keep(new RoomsState(started)) };
    },
  };
}

/** Ann and Ben, new users of `world`'s server: Ann creates a room named `name`, invites Ben, and he joins. */
export async function annAndBenIn(world: ServerPerTest, name: string): Promise<{ ann: { client: MatrixClient; rooms: RoomsState }; ben: { client: MatrixClient; rooms: RoomsState }; roomId: string }> {
  const ann = await world.user('ann', 'Ann');
  const ben = await world.user('ben', 'Ben');
  const roomId = await ann.rooms.create({ name });
  await ann.rooms.invite(roomId, ben.client.getUserId()!);
  await eventually('invite', () => ben.rooms.invites.length === 1);
  await ben.rooms.accept(roomId);
  return { ann, ben, roomId };
}

export interface SimPerTest {
  /** This test's simulation; set once `start` has run. */
  readonly sim: RealSim;
  /** Run after the test, last added first, before the simulation closes. */
  readonly disposers: Array<() => void>;
  start(init: Parameters<typeof createRealSim>[0]): Promise<RealSim>;
}

/** A simulated world of real homeservers that a test starts, torn down with what the test registered after it. */
export function simPerTest(): SimPerTest {
  let current: RealSim | undefined;
  const disposers: Array<() => void> = [];
  afterEach(async () => {
    for (const dispose of disposers.splice(0).reverse()) dispose();
    await current?.close();
    current = undefined;
  });
  return {
    get sim() {
      if (!current) throw new Error('simPerTest: start() has not run');
      return current;
    },
    disposers,
    async start(init) {
      current = await createRealSim(init);
      return current;
    },
  };
}

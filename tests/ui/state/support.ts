// State-class tests in Node: a real homeserver in process (memory storage, tests/homeserver/harness.ts) and
// matrix-js-sdk clients whose fetchFn calls its handleClient, as src/app/boot.ts wires them in a tab.
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import { logger } from 'matrix-js-sdk/lib/logger.js';
import type { Logger as LogLevelLogger } from 'loglevel';
import type { TestServer } from '../../homeserver/harness.js';

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
  const client = createClient({ baseUrl: server.baseUrl, fetchFn: fetchFnOf(server), userId: user.userId, accessToken: user.accessToken, deviceId: user.deviceId });
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

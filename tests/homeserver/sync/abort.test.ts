/**
 * A long-poll whose client gives up (HTTP disconnect, matrix-js-sdk's
 * stopClient aborting its fetch) ends at once instead of holding the request
 * until its timeout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../harness.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('GET /sync long-poll', () => {
  it('returns as soon as the request is aborted', async () => {
    // Far longer than this test's own timeout: only the abort can end the wait in time.
    server = await startTestServer({ config: { maxSyncTimeoutMs: 600_000 } });
    const alice = await server.register('alice');
    const first = await server.call('GET', '/_matrix/client/v3/sync?timeout=0', undefined, alice.accessToken);
    const since = first.json.next_batch as string;

    const controller = new AbortController();
    const pending = server.homeserver.handleClient(
      new Request(`${server.baseUrl}/_matrix/client/v3/sync?timeout=600000&since=${encodeURIComponent(since)}`, {
        headers: { authorization: `Bearer ${alice.accessToken}` },
        signal: controller.signal,
      }),
    );
    let settled = false;
    void pending.then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBe(false); // still waiting: nothing happened
    controller.abort();
    const response = await pending;
    expect(response.status).toBe(200);

    // The server is still healthy and the next sync from the same token works.
    const again = await server.call('GET', `/_matrix/client/v3/sync?timeout=0&since=${encodeURIComponent(since)}`, undefined, alice.accessToken);
    expect(again.status).toBe(200);
  }, 10_000);
});

/**
 * A real matrix-js-sdk 43 client, in process, sending faster than the
 * server's rc_message allows: it meets 429 M_LIMIT_EXCEEDED, waits what the
 * server asked (the SDK prefers the Retry-After header, whole seconds, over
 * retry_after_ms), retries, and every message arrives once, in order. Real
 * time: the SDK's scheduler sleeps on real timers, so the limit is small.
 */
import { createClient, MsgType, type MatrixClient } from 'matrix-js-sdk';
import { logger } from 'matrix-js-sdk/lib/logger.js';
import { afterAll, expect, it } from 'vitest';
import { NO_RATE_LIMITS } from '../../../src/homeserver/index.js';
import { startTestServer, type TestServer } from '../harness.js';

(logger as unknown as { setLevel(level: string): void }).setLevel('error');

let server: TestServer | undefined;
let client: MatrixClient | undefined;
afterAll(async () => {
  client?.stopClient();
  await server?.close();
});

it('matrix-js-sdk retries a send refused with 429 after retry_after_ms, and the message is delivered', async () => {
  server = await startTestServer({ config: { rateLimits: { ...NO_RATE_LIMITS, message: { perSecond: 2, burstCount: 1 } } } });
  const alice = await server.register('alice');
  const roomId = (await server.call('POST', '/_matrix/client/v3/createRoom', { preset: 'private_chat' }, alice.accessToken)).json.room_id as string;

  const sends: { status: number; at: number; retryAfter?: string }[] = [];
  const fetchFn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const response = await server!.homeserver.handleClient(new Request(input, init));
    if (init?.method === 'PUT' && String(input).includes('/send/')) {
      sends.push({ status: response.status, at: performance.now(), retryAfter: response.headers.get('retry-after') ?? undefined });
    }
    return response;
  }) as typeof fetch;
  client = createClient({ baseUrl: server.baseUrl, fetchFn, userId: alice.userId, accessToken: alice.accessToken, deviceId: alice.deviceId });

  // Three at once: the SDK queues m.room.message sends and sends them one after another.
  const bodies = ['one', 'two', 'three'];
  const results = await Promise.all(bodies.map((body) => client!.sendMessage(roomId, { msgtype: MsgType.Text, body })));
  expect(results.every((r) => typeof r.event_id === 'string')).toBe(true);

  const refused = sends.filter((s) => s.status === 429);
  expect(refused.length).toBeGreaterThan(0);
  expect(refused[0]!.retryAfter).toBe('1');
  // Each retry came no sooner than the server asked (1 s in the header; 500 ms in retry_after_ms).
  for (let i = 0; i < sends.length - 1; i++) {
    if (sends[i]!.status === 429) expect(sends[i + 1]!.at - sends[i]!.at).toBeGreaterThanOrEqual(490);
  }
  expect(sends.filter((s) => s.status === 200)).toHaveLength(3);

  const page = await server.call('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=10`, undefined, alice.accessToken);
  const delivered = page.json.chunk.filter((e: any) => e.type === 'm.room.message').map((e: any) => e.content.body).reverse();
  expect(delivered).toEqual(bodies);
});

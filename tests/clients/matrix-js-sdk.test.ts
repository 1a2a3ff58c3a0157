/**
 * matrix-js-sdk 43 against the homeserver in process: requests go through the
 * SDK's `fetchFn` straight into `handleClient`, no network in between.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startTestServer, type TestServer } from '../homeserver/harness.js';
import { runConversation } from './js-sdk-scenario.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.close();
});

describe('matrix-js-sdk in process', () => {
  it('runs a whole conversation between two users', async () => {
    const fetchFn = ((input: RequestInfo | URL, init?: RequestInit) =>
      server.homeserver.handleClient(new Request(input, init))) as typeof fetch;
    await runConversation({ baseUrl: server.baseUrl, fetchFn }, 'inproc');
  }, 120_000);
});

// HEAD answers for every GET route as GET would (status and headers), with no body (issue 6: it answered 405).
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../harness.js';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('HEAD', () => {
  it('answers a GET route with its status and headers and an empty body', async () => {
    server = await startTestServer();
    const alice = await server.register('alice');
    for (const [path, token] of [
      ['/_matrix/client/versions', undefined],
      ['/_matrix/client/v3/account/whoami', alice.accessToken],
      ['/_matrix/client/v3/pushrules/', alice.accessToken],
    ] as const) {
      const get = await server.call('GET', path, undefined, token);
      const head = await server.call('HEAD', path, undefined, token);
      expect([path, head.status]).toEqual([path, get.status]);
      expect(head.response.headers.get('content-type')).toBe(get.response.headers.get('content-type'));
      expect(await head.response.text()).toBe('');
    }
  });

  it('answers errors of a GET route the same way, without a body', async () => {
    server = await startTestServer();
    const head = await server.call('HEAD', '/_matrix/client/v3/account/whoami');
    expect(head.status).toBe(401);
    expect(await head.response.text()).toBe('');
  });

  it('still answers 405 for a route that has no GET', async () => {
    server = await startTestServer();
    const post = await server.call('HEAD', '/_matrix/client/v3/createRoom');
    expect(post.status).toBe(405);
  });
});

// Media of other servers, in process (servers wired directly, as tests/support/federation.ts does): a user on A
// uploads an image, users on B and C download it through their own servers and get the same bytes; with A cut
// off, C gets it from B's cached copy; and a hostile source's answers (over the limit, short or long chunks,
// not base64, changing size or type midway, wrong offsets) are each refused with a logged reason and nothing
// stored, while an honest source after it still serves the file.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeBase64 } from '../../../src/core/index.js';
import type { FederationClient } from '../../../src/homeserver/index.js';
import { cachedMediaKey } from '../../../src/homeserver/media/index.js';
import { MEDIA_WIRE_CHUNK_BYTES, MEDIA_WIRE_PATH } from '../../../src/homeserver/federation/media.js';
import type { Logger } from '../../../src/homeserver/context.js';
import { startFederation, type FederatedNetwork } from '../../support/federation.js';
import { download, expectImage, IMAGE, mediaIdOf, mediaUser, shareRoom, uploadImage } from '../../support/remote-media.js';
import type { TestServer } from '../harness.js';

let net: FederatedNetwork | undefined;
afterEach(async () => {
  await net?.close();
  net = undefined;
});

function recordingLog(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug() {}, error() {}, warn: (message: string) => void warnings.push(message) };
}

/** Nothing of a refused download is left: no cached item, no unfinished upload. */
async function expectNothingStored(server: TestServer, origin: string, mediaId: string): Promise<void> {
  expect(await server.storage.read((t) => t.media.get(cachedMediaKey(origin, mediaId)))).toBeUndefined();
  expect(await server.storage.read((t) => t.media.staleUploads(Number.MAX_SAFE_INTEGER))).toEqual([]);
}

describe('remote media between servers', () => {
  it('B and C download A\'s image through their own servers; with A offline C gets it from B', async () => {
    net = await startFederation(3);
    const [a, b, c] = net.servers as [TestServer, TestServer, TestServer];
    const settle = async () => void (await net!.flush());
    const alice = await mediaUser(a, 'alice');
    const bob = await mediaUser(b, 'bob');
    const carol = await mediaUser(c, 'carol');
    await shareRoom(alice, [bob, carol], settle);

    const mxc = await uploadImage(alice);
    await expectImage(bob, mxc);
    // Cached now: the legacy path and the thumbnail answer from B's copy without asking A again.
    const asked = net.log.length;
    await expectImage(bob, mxc, { legacy: true });
    await expectImage(bob, mxc, { thumbnail: true });
    expect(net.log.slice(asked)).toEqual([]);
    expect(await b.storage.read((t) => t.media.get(cachedMediaKey(a.serverName, mediaIdOf(mxc))))).toMatchObject({ size: IMAGE.byteLength, contentType: 'image/png' });

    // A is cut off from C: C's server asks A, fails, and gets the file from B.
    net.link(a, c, false);
    const before = net.log.length;
    await expectImage(carol, mxc);
    expect(net.log.slice(before).filter((l) => l.includes('org.hometab/media')).length).toBe(Math.ceil(IMAGE.byteLength / MEDIA_WIRE_CHUNK_BYTES));

    // Unknown media: 404 once every source said so; allow_remote=false never asks.
    const missing = `mxc://${a.serverName}/nosuchmedia`;
    expect((await download(bob, missing)).status).toBe(404);
    const quiet = net.log.length;
    const local = await b.homeserver.handleClient(new Request(`${b.baseUrl}/_matrix/media/v3/download/${a.serverName}/nosuchmedia2?allow_remote=false`));
    expect(local.status).toBe(404);
    expect(net.log.length).toBe(quiet);
  }, 60_000);

  it('concurrent downloads of one file fetch it once', async () => {
    net = await startFederation(2);
    const [a, b] = net.servers as [TestServer, TestServer];
    const alice = await mediaUser(a, 'alice');
    const bob = await mediaUser(b, 'bob');
    await shareRoom(alice, [bob], async () => void (await net!.flush()));
    const mxc = await uploadImage(alice);
    const before = net.log.length;
    await Promise.all([expectImage(bob, mxc), expectImage(bob, mxc), expectImage(bob, mxc, { legacy: true })]);
    expect(net.log.slice(before).length).toBe(Math.ceil(IMAGE.byteLength / MEDIA_WIRE_CHUNK_BYTES));
  }, 60_000);
});

describe('hostile media sources', () => {
  const origin = 'a'.repeat(64);
  const mediaId = 'hostileMediaId';
  const honest = (offset: number, extra: Record<string, unknown> = {}) => ({
    content_type: 'image/png',
    size: IMAGE.byteLength,
    offset,
    data: encodeBase64(IMAGE.subarray(offset, offset + MEDIA_WIRE_CHUNK_BYTES)),
    ...extra,
  });
  const cases: Array<[string, (offset: number) => unknown, RegExp, number]> = [
    ['declares more than the limit', (o) => honest(o, { size: 60 * 1024 * 1024 }), /over this server's limit/, 502],
    ['sends a short chunk', (o) => honest(o, { data: encodeBase64(IMAGE.subarray(o, o + 1000)) }), /holds 1000 bytes/, 502],
    ['sends a long last chunk', (o) => (o === 0 ? honest(o) : honest(o, { data: encodeBase64(new Uint8Array(MEDIA_WIRE_CHUNK_BYTES)) })), /holds 262144 bytes, expected/, 502],
    ['sends data that is not base64', (o) => honest(o, { data: '!!!' }), /is not base64/, 502],
    ['changes the size midway', (o) => (o === 0 ? honest(o) : honest(o, { size: IMAGE.byteLength + 1 })), /earlier ones/, 502],
    ['changes the type midway', (o) => (o === 0 ? honest(o) : honest(o, { content_type: 'text/html' })), /earlier ones/, 502],
    ['answers another offset', (o) => honest(o, { offset: o + 1 }), /answered offset/, 502],
    ['gives no size', (o) => honest(o, { size: '12' }), /"size" is not a byte count/, 502],
    ['sends a string past the JSON bound', (o) => honest(o, { data: 'A'.repeat(400_000) }), /unusable JSON/, 502],
  ];

  for (const [what, answer, reason, status] of cases) {
    it(`refuses a source that ${what}, stores nothing, and logs why`, async () => {
      const log = recordingLog();
      net = await startFederation(1, { log });
      const [b] = net.servers as [TestServer];
      const bob = await mediaUser(b, 'bob');
      const hostile: FederationClient = {
        async request(server, request) {
          expect(server).toBe(origin);
          expect(request.path.startsWith(`${MEDIA_WIRE_PATH}/${origin}/${mediaId}?`)).toBe(true);
          const offset = Number(new URL(request.path, 'http://x').searchParams.get('offset'));
          return { status: 200, body: answer(offset) };
        },
      };
      b.homeserver.replication.setClient(hostile);
      const response = await download(bob, `mxc://${origin}/${mediaId}`);
      expect(response.status).toBe(status);
      const body = await response.json();
      expect(body.errcode).toBe(reason.source.includes('limit') ? 'M_TOO_LARGE' : 'M_UNKNOWN');
      expect(log.warnings.some((w) => reason.test(w)) || reason.test(body.error)).toBe(true);
      if (!/unusable JSON/.test(reason.source)) expect(log.warnings.some((w) => w.includes(`refused the answer of ${origin}`) && reason.test(w))).toBe(true);
      await expectNothingStored(b, origin, mediaId);
    });
  }

  it('a 404 from every source is 404 to the client; an error status does not leak the remote errcode', async () => {
    net = await startFederation(1);
    const [b] = net.servers as [TestServer];
    const bob = await mediaUser(b, 'bob');
    b.homeserver.replication.setClient({ request: async () => ({ status: 404, body: { errcode: 'M_NOT_FOUND', error: 'no' } }) });
    expect((await download(bob, `mxc://${origin}/${mediaId}`)).status).toBe(404);
    b.homeserver.replication.setClient({ request: async () => ({ status: 413, body: { errcode: 'M_TOO_LARGE', error: 'hmm' } }) });
    const refused = await download(bob, `mxc://${origin}/${mediaId}`);
    expect(refused.status).toBe(502);
    expect((await refused.json()).errcode).toBe('M_UNKNOWN');
    await expectNothingStored(b, origin, mediaId);
  });

  it('an offline server answers 404 saying it cannot fetch, and a bad server name 404 without asking anyone', async () => {
    net = await startFederation(1);
    const [b] = net.servers as [TestServer];
    const bob = await mediaUser(b, 'bob');
    b.homeserver.replication.setClient(undefined);
    const offline = await download(bob, `mxc://${origin}/${mediaId}`);
    expect(offline.status).toBe(404);
    expect((await offline.json()).error).toMatch(/not connected/);
    let asked = 0;
    b.homeserver.replication.setClient({ request: async () => ((asked += 1), { status: 500, body: {} }) });
    const bad = await b.homeserver.handleClient(new Request(`${b.baseUrl}/_matrix/client/v1/media/download/bad%20name/${mediaId}`, { headers: { authorization: `Bearer ${bob.accessToken}` } }));
    expect(bad.status).toBe(404);
    expect(asked).toBe(0);
  });
});

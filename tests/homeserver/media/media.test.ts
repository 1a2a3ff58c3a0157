/**
 * The content repository: upload, download and thumbnail under the legacy
 * /_matrix/media/v3 paths and the authenticated /_matrix/client/v1/media
 * paths, the size limit, safe serving headers and hostile media IDs.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../harness.js';

const MAX_UPLOAD = 4096;
let server: TestServer;
let alice: { userId: string; accessToken: string; deviceId: string };

beforeEach(async () => {
  server = await startTestServer({ config: { maxUploadBytes: MAX_UPLOAD } });
  alice = await server.register('alice');
});
afterEach(() => server.close());

/** Every byte value, twice: a body that breaks anything that treats it as text. */
function binary(): Uint8Array {
  const bytes = new Uint8Array(512);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + 3) % 256;
  return bytes;
}

async function upload(bytes: Uint8Array, contentType?: string, filename?: string): Promise<{ status: number; json: any }> {
  const query = filename === undefined ? '' : `?filename=${encodeURIComponent(filename)}`;
  const headers: Record<string, string> = contentType ? { 'content-type': contentType } : {};
  return server.call('POST', `/_matrix/media/v3/upload${query}`, bytes, alice.accessToken, headers);
}

function mediaIdOf(contentUri: string): string {
  const prefix = `mxc://${server.serverName}/`;
  expect(contentUri.startsWith(prefix)).toBe(true);
  return contentUri.slice(prefix.length);
}

describe('upload and download', () => {
  it('round-trips binary bytes exactly, on the legacy and the authenticated paths', async () => {
    const bytes = binary();
    const res = await upload(bytes, 'image/png', 'cat.png');
    expect(res.status).toBe(200);
    const mediaId = mediaIdOf(res.json.content_uri);
    expect(mediaId).toMatch(/^[A-Za-z0-9]{24}$/);

    const legacy = await server.call('GET', `/_matrix/media/v3/download/${server.serverName}/${mediaId}`);
    expect(legacy.status).toBe(200);
    expect(new Uint8Array(await legacy.response.arrayBuffer())).toEqual(bytes);
    expect(legacy.response.headers.get('content-type')).toBe('image/png');
    expect(legacy.response.headers.get('content-disposition')).toBe('inline; filename="cat.png"');
    expect(legacy.response.headers.get('content-security-policy')).toContain('sandbox');
    expect(legacy.response.headers.get('x-content-type-options')).toBe('nosniff');

    const authed = await server.call('GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaId}`, undefined, alice.accessToken);
    expect(authed.status).toBe(200);
    expect(new Uint8Array(await authed.response.arrayBuffer())).toEqual(bytes);

    const r0 = await server.call('GET', `/_matrix/media/r0/download/${server.serverName}/${mediaId}/other.png`);
    expect(r0.response.headers.get('content-disposition')).toBe('inline; filename="other.png"');
  });

  it('requires a token on the authenticated download path', async () => {
    const { json } = await upload(binary(), 'image/png');
    const res = await server.call('GET', `/_matrix/client/v1/media/download/${server.serverName}/${mediaIdOf(json.content_uri)}`);
    expect([res.status, res.json.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
  });

  it('serves script-capable types as attachments and encodes non-ASCII filenames', async () => {
    const { json } = await upload(new TextEncoder().encode('<script>alert(1)</script>'), 'text/html', 'página.html');
    const res = await server.call('GET', `/_matrix/media/v3/download/${server.serverName}/${mediaIdOf(json.content_uri)}`);
    expect(res.response.headers.get('content-disposition')).toBe("attachment; filename*=utf-8''p%C3%A1gina.html");
    expect(res.response.headers.get('content-type')).toBe('text/html');
  });

  it('stores a missing or malformed content type as application/octet-stream', async () => {
    for (const type of [undefined, 'not a type', 'a/b/c']) {
      const { json } = await upload(binary(), type);
      const res = await server.call('GET', `/_matrix/media/v3/download/${server.serverName}/${mediaIdOf(json.content_uri)}`);
      expect(res.response.headers.get('content-type')).toBe('application/octet-stream');
      expect(res.response.headers.get('content-disposition')).toBe('attachment');
    }
  });

  it('refuses an oversize upload with 413 M_TOO_LARGE and stores nothing', async () => {
    let commits = 0;
    const stop = server.storage.subscribe(() => commits++);
    const res = await upload(new Uint8Array(MAX_UPLOAD + 1), 'image/png');
    stop();
    expect([res.status, res.json.errcode]).toEqual([413, 'M_TOO_LARGE']);
    expect(commits).toBe(0);
    // Exactly at the limit is fine.
    expect((await upload(new Uint8Array(MAX_UPLOAD), 'image/png')).status).toBe(200);
  });

  it('requires a token to upload', async () => {
    const res = await server.call('POST', '/_matrix/media/v3/upload', binary());
    expect([res.status, res.json.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
  });

  it('answers 404 M_NOT_FOUND for unknown, remote and malformed media IDs', async () => {
    const { json } = await upload(binary(), 'image/png');
    const mediaId = mediaIdOf(json.content_uri);
    const paths = [
      `/_matrix/media/v3/download/${server.serverName}/AAAAAAAAAAAAAAAAAAAAAAAA`,
      `/_matrix/media/v3/download/other.test/${mediaId}?allow_remote=false`,
      `/_matrix/media/v3/download/${server.serverName}/..%2F..%2Fetc%2Fpasswd`,
      `/_matrix/media/v3/download/${server.serverName}/${mediaId}%00`,
      `/_matrix/media/v3/download/${server.serverName}/%2Ehidden`,
      `/_matrix/media/v3/download/${server.serverName}/${'a'.repeat(300)}`,
      `/_matrix/media/v3/thumbnail/${server.serverName}/..%2Fx?width=32&height=32`,
    ];
    for (const path of paths) {
      const res = await server.call('GET', path);
      expect([path, res.status, res.json?.errcode]).toEqual([path, 404, 'M_NOT_FOUND']);
    }
    // Remote media on a server with no federation link: it cannot be fetched, and the answer says so.
    const remote = await server.call('GET', `/_matrix/media/v3/download/other.test/${mediaId}`);
    expect([remote.status, remote.json?.errcode]).toEqual([404, 'M_NOT_FOUND']);
    expect(remote.json.error).toMatch(/not connected/);
  });
});

describe('POST /_matrix/media/v1/create and PUT /upload/{serverName}/{mediaId}', () => {
  it('reserves an ID, takes its bytes once, and refuses a second upload', async () => {
    const created = await server.call('POST', '/_matrix/media/v1/create', undefined, alice.accessToken);
    expect(created.status).toBe(200);
    expect(created.json.unused_expires_at).toBeTypeOf('number');
    const mediaId = mediaIdOf(created.json.content_uri);
    const before = await server.call('GET', `/_matrix/media/v3/download/${server.serverName}/${mediaId}`);
    expect(before.status).toBe(404);

    const bob = await server.register('bob');
    const stolen = await server.call('PUT', `/_matrix/media/v3/upload/${server.serverName}/${mediaId}`, binary(), bob.accessToken, { 'content-type': 'image/png' });
    expect([stolen.status, stolen.json.errcode]).toEqual([403, 'M_FORBIDDEN']);

    const put = await server.call('PUT', `/_matrix/media/v3/upload/${server.serverName}/${mediaId}`, binary(), alice.accessToken, { 'content-type': 'image/png' });
    expect(put.status).toBe(200);
    const after = await server.call('GET', `/_matrix/media/v3/download/${server.serverName}/${mediaId}`);
    expect(new Uint8Array(await after.response.arrayBuffer())).toEqual(binary());
    const again = await server.call('PUT', `/_matrix/media/v3/upload/${server.serverName}/${mediaId}`, binary(), alice.accessToken);
    expect([again.status, again.json.errcode]).toEqual([409, 'M_CANNOT_OVERWRITE_MEDIA']);
  });

  it('lets only one of two concurrent PUTs of a reserved ID store its bytes, and keeps no chunks of the other', async () => {
    const created = await server.call('POST', '/_matrix/media/v1/create', undefined, alice.accessToken);
    const mediaId = mediaIdOf(created.json.content_uri);
    const put = (fill: number) =>
      server.call('PUT', `/_matrix/media/v3/upload/${server.serverName}/${mediaId}`, new Uint8Array(100).fill(fill), alice.accessToken, { 'content-type': 'image/png' });
    const results = await Promise.all([put(1), put(2)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    const winner = results[0]!.status === 200 ? 1 : 2;
    const stored = await server.call('GET', `/_matrix/media/v3/download/${server.serverName}/${mediaId}`);
    expect(new Uint8Array(await stored.response.arrayBuffer())).toEqual(new Uint8Array(100).fill(winner));
    expect(await server.storage.read((txn) => txn.media.staleUploads(Infinity))).toEqual([]);
  });

  it('sweeps the chunks of an upload abandoned over an hour ago when the next one begins', async () => {
    await server.storage.write(async (txn) => {
      await txn.media.beginUpload('abandoned', Date.now() - 2 * 60 * 60 * 1000);
      await txn.media.putChunk('abandoned', 0, new Uint8Array(10));
    });
    await server.storage.write((txn) => txn.media.beginUpload('recent', Date.now()));
    expect((await upload(binary(), 'image/png')).status).toBe(200);
    expect(await server.storage.read((txn) => txn.media.staleUploads(Infinity))).toEqual(['recent']);
    await expect(server.storage.write((txn) => txn.media.putChunk('abandoned', 1, new Uint8Array(1)))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses a PUT to an ID that was never reserved', async () => {
    const res = await server.call('PUT', `/_matrix/media/v3/upload/${server.serverName}/NEVERRESERVED`, binary(), alice.accessToken);
    expect([res.status, res.json.errcode]).toEqual([404, 'M_NOT_FOUND']);
  });
});

describe('thumbnails', () => {
  it('serves an image itself as its thumbnail, on both paths', async () => {
    const bytes = binary();
    const { json } = await upload(bytes, 'image/jpeg');
    const mediaId = mediaIdOf(json.content_uri);
    const legacy = await server.call('GET', `/_matrix/media/v3/thumbnail/${server.serverName}/${mediaId}?width=64&height=64&method=crop`);
    expect(legacy.status).toBe(200);
    expect(legacy.response.headers.get('content-type')).toBe('image/jpeg');
    expect(new Uint8Array(await legacy.response.arrayBuffer())).toEqual(bytes);
    const authed = await server.call('GET', `/_matrix/client/v1/media/thumbnail/${server.serverName}/${mediaId}?width=64&height=64`, undefined, alice.accessToken);
    expect(new Uint8Array(await authed.response.arrayBuffer())).toEqual(bytes);
  });

  it('refuses bad parameters, non-images and unknown media', async () => {
    const image = mediaIdOf((await upload(binary(), 'image/png')).json.content_uri);
    const svg = mediaIdOf((await upload(new TextEncoder().encode('<svg/>'), 'image/svg+xml')).json.content_uri);
    const base = `/_matrix/media/v3/thumbnail/${server.serverName}`;
    const cases: Array<[string, number, string]> = [
      [`${base}/${image}?height=32`, 400, 'M_MISSING_PARAM'],
      [`${base}/${image}?width=32`, 400, 'M_MISSING_PARAM'],
      [`${base}/${image}?width=-1&height=32`, 400, 'M_INVALID_PARAM'],
      [`${base}/${image}?width=0&height=32`, 400, 'M_INVALID_PARAM'],
      [`${base}/${image}?width=1.5&height=32`, 400, 'M_INVALID_PARAM'],
      [`${base}/${image}?width=32&height=32&method=stretch`, 400, 'M_INVALID_PARAM'],
      [`${base}/${svg}?width=32&height=32`, 400, 'M_UNKNOWN'],
      [`${base}/AAAAAAAAAAAAAAAAAAAAAAAA?width=32&height=32`, 404, 'M_NOT_FOUND'],
    ];
    for (const [path, status, errcode] of cases) {
      const res = await server.call('GET', path);
      expect([path, res.status, res.json?.errcode]).toEqual([path, status, errcode]);
    }
  });
});

describe('config', () => {
  it('reports the upload limit on both paths', async () => {
    for (const path of ['/_matrix/media/v3/config', '/_matrix/media/r0/config', '/_matrix/client/v1/media/config']) {
      const res = await server.call('GET', path, undefined, alice.accessToken);
      expect([path, res.status, res.json]).toEqual([path, 200, { 'm.upload.size': MAX_UPLOAD }]);
    }
  });
});

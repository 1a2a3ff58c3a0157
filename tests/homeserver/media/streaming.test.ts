/**
 * Media streamed to and from storage, through the Node HTTP adapter onto
 * SQLite: a 45 MB upload is never held whole (process RSS stays far below the
 * upload sizes), comes back byte for byte, and an upload over the limit is
 * refused with 413 as soon as it passes the limit, leaving nothing stored.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serveHttp, type HttpServerHandle } from '../../../src/node/http-adapter.js';
import { migrations, type Migration } from '../../../src/storage/index.js';
import { T } from '../../../src/storage/schema.js';
import { openSqliteStorage } from '../../../src/storage/sqlite/index.js';
import type { Storage } from '../../../src/storage/types.js';
import { startTestServer, type TestServer } from '../harness.js';

const MB = 1024 * 1024;
const UPLOAD_BYTES = 45 * MB;
const PIECE = 64 * 1024;

/** Piece `i` of a deterministic body, different for every piece and upload. */
function piece(seed: number, i: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let j = 0; j < length; j += 4) out.writeUInt32LE(((seed * 2654435761) ^ (i * 40503) ^ j) >>> 0, j);
  return out;
}

interface Sent {
  status: number;
  body: string;
  /** Bytes written before the answer came or the body ended. */
  written: number;
}

/** POSTs `total` bytes made by `piece`, with backpressure and without Content-Length (chunked), stopping once answered. */
function streamUpload(url: string, token: string, seed: number, total: number, onPiece?: () => void, freshConnection = true): Promise<Sent> {
  return new Promise((resolve, reject) => {
    let written = 0;
    let answered = false;
    const req = httpRequest(`${url}/_matrix/media/v3/upload?filename=big.bin`, {
      // A fresh connection each time: between uploads the test hashes 45 MB, which on a loaded machine
      // outlasts the server's 5 s keep-alive, and a reused socket the server just closed is ECONNRESET.
      // Refused uploads keep the shared agent: its keep-alive socket is not cut under the last write.
      agent: freshConnection ? false : undefined,
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    });
    req.on('response', (res: IncomingMessage) => {
      answered = true;
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body, written }));
    });
    req.on('error', (error) => (answered ? undefined : reject(error)));
    const pump = () => {
      while (!answered && written < total) {
        const length = Math.min(PIECE, total - written);
        const ok = req.write(piece(seed, written / PIECE, length));
        written += length;
        onPiece?.();
        if (!ok) return void req.once('drain', pump);
      }
      if (!answered) req.end();
    };
    pump();
  });
}

/** SHA-256 of what `piece` makes for `total` bytes. */
function expectedDigest(seed: number, total: number): string {
  const hash = createHash('sha256');
  for (let at = 0; at < total; at += PIECE) hash.update(piece(seed, at / PIECE, Math.min(PIECE, total - at)));
  return hash.digest('hex');
}

/** Downloads streaming; returns the length and SHA-256 of the body. */
function download(url: string): Promise<{ status: number; length: number; digest: string; contentLength: string | undefined }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, { agent: false }, (res) => {
      const hash = createHash('sha256');
      let length = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        length += chunk.byteLength;
      });
      res.on('end', () => resolve({ status: res.statusCode!, length, digest: hash.digest('hex'), contentLength: res.headers['content-length'] }));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

describe('media streaming through the Node HTTP adapter onto SQLite', () => {
  let dir: string;
  let path: string;
  let storage: Storage;
  let server: TestServer;
  let http: HttpServerHandle;
  let token: string;

  async function start(maxUploadBytes: number): Promise<void> {
    storage = await openSqliteStorage(path);
    server = await startTestServer({ storage, config: { maxUploadBytes } });
    http = await serveHttp((request) => server.homeserver.handleClient(request), { port: 0 });
    token = (await server.register('alice')).accessToken;
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hometab-media-'));
    path = join(dir, 'hs.sqlite');
  });
  afterEach(async () => {
    await http?.close();
    await server?.close();
    await storage?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores four 45 MB uploads with RSS growing far less than one of them, and serves them back identical', async () => {
    await start(50 * MB);
    const rss = () => process.memoryUsage().rss;
    // Warm up (code paths, SQLite page cache) so the baseline is not the cold process.
    const warm = await streamUpload(http.url, token, 99, 2 * MB);
    expect(warm.status).toBe(200);
    const baseline = rss();
    let peak = baseline;
    const uris: string[] = [];
    for (let seed = 1; seed <= 4; seed++) {
      let pieces = 0;
      const sent = await streamUpload(http.url, token, seed, UPLOAD_BYTES, () => {
        if (++pieces % 16 === 0) peak = Math.max(peak, rss());
      });
      expect(sent.status).toBe(200);
      uris.push(JSON.parse(sent.body).content_uri);
      peak = Math.max(peak, rss());
    }
    // Buffered whole, one upload alone costs several times its size (the old code grew by 578 MB over these four);
    // streamed, memory is a few chunks plus the allocator's slack.
    expect((peak - baseline) / MB).toBeLessThan(90);

    const downloadPeakBase = rss();
    let downloadPeak = downloadPeakBase;
    for (const [i, uri] of uris.entries()) {
      const got = await download(`${http.url}/_matrix/media/v3/download/${uri.slice('mxc://'.length)}`);
      downloadPeak = Math.max(downloadPeak, rss());
      expect(got).toEqual({ status: 200, length: UPLOAD_BYTES, digest: expectedDigest(i + 1, UPLOAD_BYTES), contentLength: String(UPLOAD_BYTES) });
    }
    expect((downloadPeak - downloadPeakBase) / MB).toBeLessThan(90);
  }, 240_000);

  it('refuses an upload with 413 M_TOO_LARGE as soon as it passes the limit, and keeps none of it', async () => {
    await start(3 * MB);
    const sent = await streamUpload(http.url, token, 7, 20 * MB, undefined, false);
    expect(sent.status).toBe(413);
    expect(JSON.parse(sent.body).errcode).toBe('M_TOO_LARGE');
    // Answered while the client was still sending: the rest of the body was never waited for.
    expect(sent.written).toBeLessThan(20 * MB);
    // Declared too large: refused before a byte is read.
    const declared = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${http.url}/_matrix/media/v3/upload`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-length': String(4 * MB) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.write(Buffer.alloc(PIECE));
    });
    expect(declared).toBe(413);

    await http.close();
    await server.close();
    await storage.close();
    // Every row of the media tables as stored, read by a step after the last migration.
    const counts: Record<string, number> = {};
    const count: Migration = async (schema) => {
      for (const table of [T.media, T.mediaChunks, T.mediaUploads]) counts[table] = (await schema.txn.scan(table)).length;
    };
    storage = await openSqliteStorage(path, { migrations: [...migrations, count] });
    expect(counts).toEqual({ media: 0, media_chunks: 0, media_uploads: 0 });
  });
});

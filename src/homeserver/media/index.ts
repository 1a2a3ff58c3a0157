/**
 * The media repository (spec: "Content repository"): content kept in storage
 * under random media IDs, named by `mxc://<serverName>/<mediaId>`, and the
 * headers that make serving user-uploaded bytes safe: a sandboxing
 * Content-Security-Policy, `nosniff`, and `inline` only for types a browser
 * cannot run script from (the spec's list, as Synapse uses it). Media IDs from
 * requests are checked against the grammar before anything is looked up.
 *
 * Content streams both ways, so memory per transfer is a chunk or two, not
 * the file: an upload is written to storage in MEDIA_CHUNK_BYTES chunks as
 * its body arrives (one transaction per chunk, since a transaction cannot
 * wait for the network) and refused with 413 the moment it passes the limit;
 * a download is read back a chunk per pull. The cost is a transaction per
 * 256 KiB, and chunks left by an upload that never finished, which the next
 * upload sweeps once they are an hour old.
 */
import { isValidServerName } from '../../core/index.js';
import { randomId, type HomeserverContext } from '../context.js';
import { tooLarge } from '../http/errors.js';
import { MEDIA_CHUNK_BYTES, type MediaRecord, type WriteTxn } from '../../storage/types.js';

/** Media IDs this server hands out and accepts: the spec's `[A-Za-z0-9_-]+`, bounded. */
const MEDIA_ID = /^[A-Za-z0-9_-]{1,255}$/;
const MEDIA_ID_LENGTH = 24;

/** Types shown inline: they cannot carry script (spec: "Serving inline content"). */
const INLINE_TYPES = new Set([
  'text/css',
  'text/plain',
  'text/csv',
  'application/json',
  'application/ld+json',
  'image/jpeg',
  'image/gif',
  'image/png',
  'image/apng',
  'image/webp',
  'image/avif',
  'video/mp4',
  'video/webm',
  'video/ogg',
  'video/quicktime',
  'audio/mp4',
  'audio/webm',
  'audio/aac',
  'audio/mpeg',
  'audio/ogg',
  'audio/wave',
  'audio/wav',
  'audio/x-wav',
  'audio/x-pn-wav',
  'audio/flac',
  'audio/x-flac',
]);

/** Image types a thumbnail may be served as (no SVG: it can carry script). */
const THUMBNAILABLE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/apng', 'image/avif', 'image/bmp']);

export const MEDIA_CSP = "sandbox; default-src 'none'; script-src 'none'; plugin-types application/pdf; style-src 'unsafe-inline'; media-src 'self'; object-src 'self';";

export function isValidMediaId(mediaId: string): boolean {
  return MEDIA_ID.test(mediaId);
}

/** The media type without parameters, lower-cased: `Text/Plain; charset=x` -> `text/plain`. */
export function essenceOf(contentType: string): string {
  return contentType.split(';')[0]!.trim().toLowerCase();
}

export function isThumbnailable(contentType: string): boolean {
  return THUMBNAILABLE_TYPES.has(essenceOf(contentType));
}

/** A Content-Type header value that is safe to store and send back; octet-stream when absent or odd. */
export function normaliseContentType(header: string | null): string {
  const value = header?.trim() ?? '';
  // RFC 9110 type "/" subtype (tokens) with optional parameters, printable ASCII only.
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*;[\x20-\x7e]*)?$/.test(value) || value.length > 255) {
    return 'application/octet-stream';
  }
  return value;
}

/** A filename from a query parameter or path: no control characters or path separators, bounded. */
export function cleanFilename(name: string | null | undefined): string | undefined {
  if (!name) return undefined;
  // eslint-disable-next-line no-control-regex
  const cleaned = name.replace(/[\u0000-\u001f\u007f/\\]/g, '_').slice(0, 255);
  return cleaned.length > 0 ? cleaned : undefined;
}

/** Content-Disposition for a download: `inline` for safe types, else `attachment`; RFC 6266 filename encoding. */
export function contentDisposition(contentType: string, filename: string | undefined): string {
  const kind = INLINE_TYPES.has(essenceOf(contentType)) ? 'inline' : 'attachment';
  if (!filename) return kind;
  if (/^[\x20-\x7e]*$/.test(filename) && !/["\\]/.test(filename)) return `${kind}; filename="${filename}"`;
  return `${kind}; filename*=utf-8''${encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

/** Headers for serving a stored item's bytes. */
export function mediaHeaders(record: MediaRecord, filename?: string): Record<string, string> {
  return {
    'content-disposition': contentDisposition(record.contentType, filename ?? record.filename),
    'content-security-policy': MEDIA_CSP,
    'x-content-type-options': 'nosniff',
    'cross-origin-resource-policy': 'cross-origin',
    // Media never changes once uploaded.
    'cache-control': 'public, max-age=86400, immutable',
  };
}

/** A fresh media ID for an upload or a reservation. */
export function newMediaId(ctx: Pick<HomeserverContext, 'randomBytes'>): string {
  return randomId(ctx, MEDIA_ID_LENGTH);
}

/** Unfinished uploads older than this are taken for abandoned; the next upload removes their chunks. */
export const STALE_UPLOAD_MS = 60 * 60 * 1000;

/** An upload whose content is stored as the chunks of an unfinished blob. */
export interface ReceivedUpload {
  blobId: string;
  size: number;
}

/**
 * Streams `body` into storage and then runs `commit` in one transaction to
 * make it a media item (`txn.media.finishUpload`). Refuses with 413 before
 * storing anything when the declared length is over `limit`, and as soon as
 * more than `limit` bytes have arrived otherwise. Whatever fails (the limit,
 * a client gone, `commit` throwing), the chunks written are removed again.
 */
export async function storeUpload<T>(
  ctx: HomeserverContext,
  request: Request,
  limit: number,
  commit: (txn: WriteTxn, upload: ReceivedUpload) => Promise<T>,
): Promise<T> {
  const declared = Number(request.headers.get('content-length') ?? NaN);
  if (declared > limit) throw tooLarge(`Upload is larger than ${limit} bytes`);
  const blobId = randomId(ctx, 32);
  const now = ctx.clock.now();
  await ctx.storage.write(async (txn) => {
    for (const stale of await txn.media.staleUploads(now - STALE_UPLOAD_MS)) await txn.media.abortUpload(stale);
    await txn.media.beginUpload(blobId, now);
  });
  try {
    const size = await writeChunks(ctx, blobId, request.body, limit);
    return await ctx.storage.write((txn) => commit(txn, { blobId, size }));
  } catch (error) {
    await ctx.storage.write((txn) => txn.media.abortUpload(blobId)).catch((e: unknown) => ctx.log.warn('could not remove an abandoned upload', e));
    throw error;
  }
}

/** Writes a body as chunks of `blobId`, a transaction per full chunk; returns its length. */
async function writeChunks(ctx: HomeserverContext, blobId: string, body: ReadableStream<Uint8Array> | null, limit: number): Promise<number> {
  if (!body) return 0;
  const reader = body.getReader();
  let size = 0;
  let index = 0;
  // A fresh buffer per chunk: a backend may keep the stored array (the memory one does).
  let chunk = new Uint8Array(MEDIA_CHUNK_BYTES);
  let filled = 0;
  const flush = async (bytes: Uint8Array) => {
    const at = index++;
    await ctx.storage.write((txn) => txn.media.putChunk(blobId, at, bytes));
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > limit) throw tooLarge(`Upload is larger than ${limit} bytes`);
      for (let offset = 0; offset < value.byteLength; ) {
        const taken = Math.min(value.byteLength - offset, MEDIA_CHUNK_BYTES - filled);
        chunk.set(value.subarray(offset, offset + taken), filled);
        filled += taken;
        offset += taken;
        if (filled === MEDIA_CHUNK_BYTES) {
          await flush(chunk);
          chunk = new Uint8Array(MEDIA_CHUNK_BYTES);
          filled = 0;
        }
      }
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
  if (filled > 0) await flush(chunk.slice(0, filled));
  return size;
}

/** The content of a stored item as a stream that reads one chunk from storage per pull. */
export function mediaContent(ctx: HomeserverContext, record: MediaRecord): ReadableStream<Uint8Array> {
  let index = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (index >= record.chunks) {
        controller.close();
        return;
      }
      const at = index++;
      const chunk = await ctx.storage.read((txn) => txn.media.chunk(record.mediaId, at));
      if (chunk) controller.enqueue(chunk);
      else controller.error(new Error(`media ${record.mediaId} lacks chunk ${at}`));
    },
  });
}

/**
 * The storage key of another server's item cached here. It holds a `/`, which
 * the media ID grammar never does, so a cached copy can never be mistaken for
 * (or served as) one of this server's own items.
 */
export function cachedMediaKey(serverName: string, mediaId: string): string {
  return `remote/${serverName}/${mediaId}`;
}

/**
 * The item named by (serverName, mediaId) from a request path: one of ours,
 * or another server's copy cached here (federation/media.ts fetched it), or
 * undefined (unknown, not fetched yet, or not a valid name).
 */
export async function findMedia(ctx: HomeserverContext, serverName: string, mediaId: string): Promise<MediaRecord | undefined> {
  if (!isValidMediaId(mediaId) || !isValidServerName(serverName)) return undefined;
  const key = serverName === ctx.serverName ? mediaId : cachedMediaKey(serverName, mediaId);
  return ctx.storage.read((txn) => txn.media.get(key));
}

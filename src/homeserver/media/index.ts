/**
 * The media repository (spec: "Content repository"): blobs kept in storage
 * under random media IDs, named by `mxc://<serverName>/<mediaId>`, and the
 * headers that make serving user-uploaded bytes safe: a sandboxing
 * Content-Security-Policy, `nosniff`, and `inline` only for types a browser
 * cannot run script from (the spec's list, as Synapse uses it). Media IDs from
 * requests are checked against the grammar before anything is looked up.
 */
import { randomId, type HomeserverContext } from '../context.js';
import type { MediaRecord } from '../../storage/types.js';

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

/** Stores an upload under a fresh media ID; returns its mxc:// URI. */
export async function storeMedia(
  ctx: HomeserverContext,
  uploader: string,
  bytes: Uint8Array,
  contentType: string,
  filename: string | undefined,
): Promise<string> {
  const mediaId = randomId(ctx, MEDIA_ID_LENGTH);
  await ctx.storage.write((txn) => txn.media.add({ mediaId, contentType, filename, bytes, uploader, createdAt: ctx.clock.now() }));
  return `mxc://${ctx.serverName}/${mediaId}`;
}

/** A local item named by (serverName, mediaId) from a request path, or undefined (unknown, remote, or not a valid ID). */
export async function findMedia(ctx: HomeserverContext, serverName: string, mediaId: string): Promise<MediaRecord | undefined> {
  if (serverName !== ctx.serverName || !isValidMediaId(mediaId)) return undefined;
  return ctx.storage.read((txn) => txn.media.get(mediaId));
}

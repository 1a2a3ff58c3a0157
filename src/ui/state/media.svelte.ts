/**
 * Media in messages: what an m.image / m.file event's content says (checked, since it comes from other
 * users), and the bytes behind it. Bytes are fetched with the access token from the authenticated media
 * API (GET /_matrix/client/v1/media/download/{serverName}/{mediaId}), through the client's own fetchFn, so
 * they come from the in-tab server (which asks peers for media of other servers); images become object
 * URLs, shared between the messages that show the same media and revoked on `dispose`.
 */
import { SvelteMap } from 'svelte/reactivity';
import type { MatrixClient, Method } from 'matrix-js-sdk';

/** Images larger than this are offered as downloads, never decoded for a preview. */
export const MAX_PREVIEW_BYTES = 20 * 1024 * 1024;
/** The box an inline preview is scaled into, in CSS pixels. */
export const PREVIEW_BOX = { width: 320, height: 240 };
/** Image types a preview decodes; anything else (SVG included) is a download. */
const PREVIEW_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);
const MXC = /^mxc:\/\/([A-Za-z0-9.:[\]-]{1,255})\/([A-Za-z0-9_-]{1,255})$/;
const DOWNLOAD_PREFIX = '/_matrix/client/v1/media';
/** Remote media may have to be fetched from a peer first. */
const DOWNLOAD_TIMEOUT_MS = 60_000;

export interface MediaContent {
  kind: 'image' | 'file';
  mxc: string;
  serverName: string;
  mediaId: string;
  /** The file name to show and to save as. */
  name: string;
  mimetype?: string;
  size?: number;
  /** The preview's size in CSS pixels (the image's own size scaled into PREVIEW_BOX), when the event says it. */
  width?: number;
  height?: number;
  /** Whether the UI shows it inline (an image of a decodable type, not too large). */
  previewable: boolean;
}

function dimension(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= 100_000 ? value : undefined;
}

/** Splits an mxc:// URI, or undefined when it is not one. */
export function parseMxc(uri: unknown): { serverName: string; mediaId: string } | undefined {
  if (typeof uri !== 'string') return undefined;
  const match = MXC.exec(uri);
  return match ? { serverName: match[1]!, mediaId: match[2]! } : undefined;
}

/** The media of a message's content, or undefined when it is not an m.image / m.file with a valid mxc URI. */
export function mediaOf(content: Record<string, unknown>): MediaContent | undefined {
  const msgtype = content.msgtype;
  if (msgtype !== 'm.image' && msgtype !== 'm.file') return undefined;
  const parsed = parseMxc(content.url);
  if (!parsed) return undefined;
  const info = typeof content.info === 'object' && content.info !== null ? (content.info as Record<string, unknown>) : {};
  const rawName = typeof content.filename === 'string' ? content.filename : typeof content.body === 'string' ? content.body : '';
  const name = rawName.replace(/[\u0000-\u001f\u007f/\\]/g, '').slice(0, 255) || 'file';
  const mimetype = typeof info.mimetype === 'string' && info.mimetype.length < 128 ? info.mimetype.toLowerCase() : undefined;
  const size = typeof info.size === 'number' && Number.isSafeInteger(info.size) && info.size >= 0 ? info.size : undefined;
  const media: MediaContent = { kind: msgtype === 'm.image' ? 'image' : 'file', mxc: content.url as string, ...parsed, name, mimetype, size, previewable: false };
  media.previewable = media.kind === 'image' && (mimetype === undefined || PREVIEW_TYPES.has(mimetype)) && (size === undefined || size <= MAX_PREVIEW_BYTES);
  const w = dimension(info.w);
  const h = dimension(info.h);
  if (w && h) {
    const scale = Math.min(1, PREVIEW_BOX.width / w, PREVIEW_BOX.height / h);
    media.width = Math.max(1, Math.round(w * scale));
    media.height = Math.max(1, Math.round(h * scale));
  }
  return media;
}

type Loaded = { state: 'loading' } | { state: 'ready'; url: string; bytes: number } | { state: 'failed'; error: string };

export class MediaState {
  /** Per mxc URI: loading, an object URL of the image, or why it failed. */
  readonly previews = new SvelteMap<string, Loaded>();
  readonly #client: MatrixClient;
  readonly #urls = new Map<string, string>();
  #disposed = false;

  constructor(client: MatrixClient) {
    this.#client = client;
  }

  /** The bytes of a media item, with the access token (authenticated media). */
  async download(media: Pick<MediaContent, 'serverName' | 'mediaId'>): Promise<Blob> {
    const path = `/download/${encodeURIComponent(media.serverName)}/${encodeURIComponent(media.mediaId)}`;
    return this.#client.http.authedRequest<Blob>('GET' as Method, path, undefined, undefined, {
      prefix: DOWNLOAD_PREFIX,
      rawResponseBody: true,
      localTimeoutMs: DOWNLOAD_TIMEOUT_MS,
    });
  }

  /** Fetches an image for its inline preview once (again after a failure when `retry`). */
  async loadPreview(media: MediaContent, retry = false): Promise<void> {
    if (!media.previewable || this.#disposed) return;
    const known = this.previews.get(media.mxc);
    if (known && !(retry && known.state === 'failed')) return;
    this.#set(media.mxc, { state: 'loading' });
    try {
      const blob = await this.download(media);
      if (blob.size > MAX_PREVIEW_BYTES) throw new Error('too large to preview');
      const type = media.mimetype && PREVIEW_TYPES.has(media.mimetype) ? media.mimetype : blob.type;
      if (!PREVIEW_TYPES.has(type)) throw new Error('not an image this app previews');
      if (this.#disposed) return;
      const url = URL.createObjectURL(new Blob([blob], { type }));
      this.#urls.set(media.mxc, url);
      this.#set(media.mxc, { state: 'ready', url, bytes: blob.size });
    } catch (error) {
      this.#set(media.mxc, { state: 'failed', error: error instanceof Error ? error.message : String(error) });
    }
  }

  #set(mxc: string, value: Loaded): void {
    if (!this.#disposed) this.previews.set(mxc, value);
  }

  dispose(): void {
    this.#disposed = true;
    for (const url of this.#urls.values()) URL.revokeObjectURL(url);
    this.#urls.clear();
  }
}

/**
 * "Attach file" for one room: each chosen file is uploaded through the media API (POST
 * /_matrix/media/v3/upload) and then sent as m.image (with info w, h, mimetype, size, when the browser can
 * decode it) or m.file. Progress counts the bytes the server has read from the file's stream: the SDK's
 * own uploadContent reports progress only through XMLHttpRequest, which would go to the network rather
 * than to the client's fetchFn (the in-tab server), so the body is streamed through fetchFn instead.
 */
import type { MatrixClient, Method } from 'matrix-js-sdk';

export type UploadPhase = 'uploading' | 'sending' | 'failed';

export interface Upload {
  id: number;
  name: string;
  /** Bytes the server has read so far, of `total`. */
  loaded: number;
  total: number;
  phase: UploadPhase;
  error?: string;
}

export interface ImageSize {
  w: number;
  h: number;
}

/** Decodes an image's size in the browser; undefined where it cannot be decoded (or no decoder exists). */
export async function measureWithImageBitmap(file: Blob): Promise<ImageSize | undefined> {
  if (typeof createImageBitmap !== 'function') return undefined;
  try {
    const bitmap = await createImageBitmap(file);
    const size = { w: bitmap.width, h: bitmap.height };
    bitmap.close();
    return size;
  } catch {
    return undefined;
  }
}

/**
 * POST /_matrix/media/v3/upload through the client's fetchFn, streaming the file so that `progress` hears
 * every chunk the server reads; resolves with the mxc:// URI.
 */
export async function uploadFile(client: MatrixClient, file: File, mimetype: string, progress: (loaded: number) => void = () => {}): Promise<string> {
  let loaded = 0;
  const counted = file.stream().pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        loaded += chunk.byteLength;
        progress(loaded);
        controller.enqueue(chunk);
      },
    }),
  );
  const response = await client.http.authedRequest<{ content_uri?: unknown }>(
    'POST' as Method,
    '/upload',
    { filename: file.name },
    counted as never,
    { prefix: '/_matrix/media/v3', headers: { 'Content-Type': mimetype } },
  );
  if (typeof response.content_uri !== 'string' || !response.content_uri.startsWith('mxc://')) throw new Error('the server gave no content URI');
  return response.content_uri;
}

export interface UploadsOptions {
  /** How image sizes are read (the browser's decoder by default). */
  measureImage?: (file: Blob) => Promise<ImageSize | undefined>;
}

export class UploadsState {
  uploads = $state<Upload[]>([]);
  readonly roomId: string;
  readonly #client: MatrixClient;
  readonly #measureImage: (file: Blob) => Promise<ImageSize | undefined>;
  #nextId = 1;

  constructor(client: MatrixClient, roomId: string, options: UploadsOptions = {}) {
    this.#client = client;
    this.roomId = roomId;
    this.#measureImage = options.measureImage ?? measureWithImageBitmap;
  }

  /** Uploads `file` and sends it to the room; resolves with the sent event's ID (rejects on failure, which also stays listed). */
  async attach(file: File): Promise<string> {
    const upload: Upload = { id: this.#nextId++, name: file.name || 'file', loaded: 0, total: file.size, phase: 'uploading' };
    this.uploads = [...this.uploads, upload];
    const update = (change: Partial<Upload>) => {
      this.uploads = this.uploads.map((u) => (u.id === upload.id ? { ...u, ...change } : u));
    };
    try {
      const mimetype = file.type || 'application/octet-stream';
      const size = mimetype.startsWith('image/') ? await this.#measureImage(file) : undefined;
      const contentUri = await uploadFile(this.#client, file, mimetype, (loaded) => update({ loaded }));
      update({ phase: 'sending', loaded: file.size });
      const content = size
        ? { msgtype: 'm.image', body: upload.name, filename: upload.name, url: contentUri, info: { w: size.w, h: size.h, mimetype, size: file.size } }
        : { msgtype: 'm.file', body: upload.name, filename: upload.name, url: contentUri, info: { mimetype, size: file.size } };
      const { event_id: eventId } = await this.#client.sendMessage(this.roomId, content as never);
      this.uploads = this.uploads.filter((u) => u.id !== upload.id);
      return eventId;
    } catch (error) {
      update({ phase: 'failed', error: error instanceof Error ? error.message : String(error) });
      throw error;
    }
  }

  /** Removes a failed upload from the list. */
  dismiss(id: number): void {
    this.uploads = this.uploads.filter((u) => u.id !== id);
  }

  dispose(): void {
    this.uploads = [];
  }
}

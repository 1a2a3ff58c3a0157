/**
 * Server-wide odds and ends: media (a description row per item, its content
 * as chunk rows written as an upload streams in; see MediaStore), client
 * transaction IDs (so a retried request is answered, not repeated), the
 * replication outbox (per destination, in enqueue order, dropped once
 * acknowledged), free-form meta values such as the signing seed, and the
 * stream counter.
 */
import type { JsonValue } from '../../core/index.js';
import { StorageError } from '../errors.js';
import type { Key } from '../keys.js';
import { T } from '../schema.js';
import {
  type FinishedUpload,
  MEDIA_CHUNK_BYTES,
  type MediaRecord,
  type MediaStore,
  type MetaStore,
  type NewMedia,
  type OutboundRecord,
  type OutboundStore,
  type StreamStore,
  type TransactionIdRecord,
  type TransactionIdsStore,
} from '../types.js';
import type { TxnContext } from './context.js';
import { fromRow, fromRows, toRow } from './rows.js';

/** A media row: the description, and either where its chunks are or, before migration 5, the bytes themselves. */
interface MediaRow {
  mediaId: string;
  contentType: string;
  filename?: string;
  uploader: string;
  size: number;
  createdAt: number;
  /** The blob in media_chunks holding the content (migration 5 on). */
  blobId?: string;
  chunks?: number;
  /** The whole content, in rows stored before migration 5. */
  bytes?: Uint8Array;
}

/** A plain Uint8Array view, so a Node Buffer comes back from every backend as the same type. */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The blob of an item stored whole by `add`; upload blob IDs come from the caller and never contain a colon. */
const wholeBlobId = (mediaId: string) => `whole:${mediaId}`;

export class Media implements MediaStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(mediaId: string): Promise<MediaRecord | undefined> {
    const row = fromRow<MediaRow>(await this.ctx.t.get(T.media, [mediaId]));
    return row && recordOf(row);
  }

  async chunk(mediaId: string, index: number): Promise<Uint8Array | undefined> {
    const row = fromRow<MediaRow>(await this.ctx.t.get(T.media, [mediaId]));
    if (!row) return undefined;
    if (row.blobId === undefined) return index === 0 && row.bytes ? row.bytes : undefined;
    const chunk = await this.ctx.t.get(T.mediaChunks, [row.blobId, index]);
    return chunk?.bytes as Uint8Array | undefined;
  }

  async staleUploads(before: number): Promise<string[]> {
    const rows = await this.ctx.t.scan(T.mediaUploads);
    return rows.filter((row) => (row.startedAt as number) < before).map((row) => row.blobId as string);
  }

  async add(media: NewMedia): Promise<MediaRecord> {
    this.ctx.assertWritable();
    await this.assertFree(media.mediaId);
    const bytes = plainBytes(media.bytes);
    const blobId = wholeBlobId(media.mediaId);
    let chunks = 0;
    for (let offset = 0; offset < bytes.byteLength; offset += MEDIA_CHUNK_BYTES) {
      await this.ctx.t.put(T.mediaChunks, { blobId, index: chunks++, bytes: bytes.slice(offset, offset + MEDIA_CHUNK_BYTES) });
    }
    const { mediaId, contentType, filename, uploader, createdAt } = media;
    const row: MediaRow = { mediaId, contentType, filename, uploader, createdAt, size: bytes.byteLength, blobId, chunks };
    await this.ctx.t.put(T.media, toRow(row));
    return recordOf(row);
  }

  async beginUpload(blobId: string, startedAt: number): Promise<void> {
    this.ctx.assertWritable();
    if ((await this.ctx.t.count(T.mediaUploads, { prefix: [blobId] })) > 0) {
      throw new StorageError('EXISTS', `upload ${blobId} exists`);
    }
    await this.ctx.t.put(T.mediaUploads, { blobId, startedAt });
  }

  async putChunk(blobId: string, index: number, bytes: Uint8Array): Promise<void> {
    this.ctx.assertWritable();
    await this.assertUnfinished(blobId);
    await this.ctx.t.put(T.mediaChunks, { blobId, index, bytes: plainBytes(bytes) });
  }

  async finishUpload(upload: FinishedUpload): Promise<MediaRecord> {
    this.ctx.assertWritable();
    await this.assertFree(upload.mediaId);
    await this.assertUnfinished(upload.blobId);
    const chunks = await this.ctx.t.count(T.mediaChunks, { prefix: [upload.blobId] });
    const { mediaId, contentType, filename, uploader, createdAt, blobId, size } = upload;
    const row: MediaRow = { mediaId, contentType, filename, uploader, createdAt, size, blobId, chunks };
    await this.ctx.t.delete(T.mediaUploads, [blobId]);
    await this.ctx.t.put(T.media, toRow(row));
    return recordOf(row);
  }

  async abortUpload(blobId: string): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.deleteRange(T.mediaChunks, { prefix: [blobId] });
    await this.ctx.t.delete(T.mediaUploads, [blobId]);
  }

  async delete(mediaId: string): Promise<void> {
    this.ctx.assertWritable();
    const row = fromRow<MediaRow>(await this.ctx.t.get(T.media, [mediaId]));
    if (row?.blobId !== undefined) await this.ctx.t.deleteRange(T.mediaChunks, { prefix: [row.blobId] });
    await this.ctx.t.delete(T.media, [mediaId]);
  }

  private async assertFree(mediaId: string): Promise<void> {
    if ((await this.ctx.t.count(T.media, { prefix: [mediaId] })) > 0) {
      throw new StorageError('EXISTS', `media ${mediaId} exists`);
    }
  }

  private async assertUnfinished(blobId: string): Promise<void> {
    if ((await this.ctx.t.count(T.mediaUploads, { prefix: [blobId] })) === 0) {
      throw new StorageError('NOT_FOUND', `no unfinished upload ${blobId}`);
    }
  }
}

/** The description of a media row, old layout or new. */
function recordOf(row: MediaRow): MediaRecord {
  const { mediaId, contentType, filename, uploader, size, createdAt } = row;
  const chunks = row.chunks ?? (row.bytes && row.bytes.byteLength > 0 ? 1 : 0);
  return toRow({ mediaId, contentType, filename, uploader, size, chunks, createdAt }) as unknown as MediaRecord;
}

export class TransactionIds implements TransactionIdsStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(userId: string, deviceId: string, txnId: string): Promise<TransactionIdRecord | undefined> {
    return fromRow<TransactionIdRecord>(await this.ctx.t.get(T.transactionIds, [userId, deviceId, txnId]));
  }

  async put(record: TransactionIdRecord): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.put(T.transactionIds, toRow(record));
  }

  async add(record: TransactionIdRecord): Promise<void> {
    this.ctx.assertWritable();
    const { insert } = this.ctx.t;
    if (insert) return insert.call(this.ctx.t, T.transactionIds, toRow(record));
    if (await this.get(record.userId, record.deviceId, record.txnId)) {
      throw new StorageError('EXISTS', `transaction ${record.txnId} of ${record.userId}/${record.deviceId} is recorded`);
    }
    await this.ctx.t.put(T.transactionIds, toRow(record));
  }
}

export class Outbound implements OutboundStore {
  constructor(private readonly ctx: TxnContext) {}

  async peek(destination: string, limit?: number): Promise<OutboundRecord[]> {
    return fromRows<OutboundRecord>(await this.ctx.t.scan(T.outbound, { prefix: [destination], limit }));
  }

  async destinations(): Promise<string[]> {
    // Skip scan: one row per destination, seeking past each destination's last possible seq.
    const destinations: string[] = [];
    let after: Key | undefined;
    for (;;) {
      const range = after ? { lower: after, lowerOpen: true } : {};
      const [row] = await this.ctx.t.scan(T.outbound, { ...range, limit: 1 });
      if (!row) return destinations;
      const destination = row.destination as string;
      destinations.push(destination);
      after = [destination, Infinity];
    }
  }

  async enqueue(destination: string, payload: JsonValue): Promise<OutboundRecord> {
    this.ctx.assertWritable();
    const record: OutboundRecord = { destination, seq: await this.ctx.nextId('outbound'), payload };
    await this.ctx.t.put(T.outbound, toRow(record));
    this.ctx.note({ kind: 'outbound', destination, record });
    return record;
  }

  async ack(destination: string, upTo: number): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.deleteRange(T.outbound, { lower: [destination, -Infinity], upper: [destination, upTo] });
  }
}

export class Meta implements MetaStore {
  constructor(private readonly ctx: TxnContext) {}

  async get<V = unknown>(key: string): Promise<V | undefined> {
    const row = await this.ctx.t.get(T.meta, [key]);
    return row?.value as V | undefined;
  }

  async put(key: string, value: unknown): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.put(T.meta, { key, value });
  }

  async delete(key: string): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.delete(T.meta, [key]);
  }
}

export class Stream implements StreamStore {
  constructor(private readonly ctx: TxnContext) {}

  current(): Promise<number> {
    return this.ctx.streamPosition();
  }

  next(): Promise<number> {
    return this.ctx.nextStreamPosition();
  }
}

/**
 * Server-wide odds and ends: media blobs, client transaction IDs (so a retried
 * request is answered, not repeated), the replication outbox (per destination,
 * in enqueue order, dropped once acknowledged), free-form meta values such as
 * the signing seed, and the stream counter.
 */
import type { JsonValue } from '../../core/index.js';
import { StorageError } from '../errors.js';
import type { Key } from '../keys.js';
import { T } from '../schema.js';
import type {
  MediaRecord,
  MediaStore,
  MetaStore,
  OutboundRecord,
  OutboundStore,
  StreamStore,
  TransactionIdRecord,
  TransactionIdsStore,
} from '../types.js';
import type { TxnContext } from './context.js';
import { fromRow, fromRows, toRow } from './rows.js';

export class Media implements MediaStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(mediaId: string): Promise<MediaRecord | undefined> {
    return fromRow<MediaRecord>(await this.ctx.t.get(T.media, [mediaId]));
  }

  async add(media: Omit<MediaRecord, 'size'>): Promise<MediaRecord> {
    this.ctx.assertWritable();
    if ((await this.ctx.t.count(T.media, { prefix: [media.mediaId] })) > 0) {
      throw new StorageError('EXISTS', `media ${media.mediaId} exists`);
    }
    // A plain Uint8Array view, so a Node Buffer comes back from every backend as the same type.
    const bytes =
      media.bytes.constructor === Uint8Array
        ? media.bytes
        : new Uint8Array(media.bytes.buffer, media.bytes.byteOffset, media.bytes.byteLength);
    const record: MediaRecord = { ...media, bytes, size: bytes.byteLength };
    await this.ctx.t.put(T.media, toRow(record));
    return record;
  }

  async delete(mediaId: string): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.delete(T.media, [mediaId]);
  }
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
    this.ctx.note({ kind: 'outbound', destination });
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

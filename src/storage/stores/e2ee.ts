/**
 * What end-to-end encryption needs the server to keep: device and
 * cross-signing keys, one-time keys (claimed at most once: the read and the
 * delete share a transaction), fallback keys, each device's to-device inbox,
 * and the stream of users whose device lists changed.
 */
import type { JsonValue } from '../../core/index.js';
import { type OnCorruptRow, StorageError } from '../errors.js';
import { T } from '../schema.js';
import type {
  ClaimedKey,
  CrossSigningKeyRecord,
  CrossSigningKeysStore,
  CrossSigningKeyType,
  DeviceKeysRecord,
  DeviceKeysStore,
  DeviceListChange,
  DeviceListsStore,
  FallbackKeyRecord,
  FallbackKeysStore,
  OneTimeKeysStore,
  StreamWindow,
  ToDeviceMessage,
  ToDeviceRecord,
  ToDeviceStore,
} from '../types.js';
import { streamWindow, type TxnContext, windowQuery } from './context.js';
import { fromRow, fromRows, toRow } from './rows.js';

export class DeviceKeys implements DeviceKeysStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(userId: string, deviceId: string): Promise<DeviceKeysRecord | undefined> {
    return fromRow<DeviceKeysRecord>(await this.ctx.t.get(T.deviceKeys, [userId, deviceId]));
  }

  async forUser(userId: string, onCorrupt?: OnCorruptRow): Promise<DeviceKeysRecord[]> {
    return fromRows<DeviceKeysRecord>(await this.ctx.t.scan(T.deviceKeys, { prefix: [userId], onCorrupt }));
  }

  async put(record: DeviceKeysRecord): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.put(T.deviceKeys, toRow(record));
  }

  async delete(userId: string, deviceId: string): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.delete(T.deviceKeys, [userId, deviceId]);
  }
}

export class CrossSigningKeys implements CrossSigningKeysStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(userId: string, keyType: CrossSigningKeyType): Promise<CrossSigningKeyRecord | undefined> {
    return fromRow<CrossSigningKeyRecord>(await this.ctx.t.get(T.crossSigningKeys, [userId, keyType]));
  }

  async forUser(userId: string, onCorrupt?: OnCorruptRow): Promise<CrossSigningKeyRecord[]> {
    return fromRows<CrossSigningKeyRecord>(await this.ctx.t.scan(T.crossSigningKeys, { prefix: [userId], onCorrupt }));
  }

  async put(record: CrossSigningKeyRecord): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.put(T.crossSigningKeys, toRow(record));
  }
}

interface OneTimeKeyRow {
  userId: string;
  deviceId: string;
  algorithm: string;
  keyId: string;
  key: JsonValue;
}

/** Splits "algorithm:keyId" at its first colon. */
function splitKeyId(id: string): [algorithm: string, keyId: string] {
  const colon = id.indexOf(':');
  if (colon <= 0) throw new StorageError('BAD_KEY', `key ID ${JSON.stringify(id)} is not "algorithm:keyId"`);
  return [id.slice(0, colon), id.slice(colon + 1)];
}

export class OneTimeKeys implements OneTimeKeysStore {
  constructor(private readonly ctx: TxnContext) {}

  async counts(userId: string, deviceId: string): Promise<Record<string, number>> {
    const rows = fromRows<OneTimeKeyRow>(await this.ctx.t.scan(T.oneTimeKeys, { prefix: [userId, deviceId] }));
    // Algorithms are named by the client (the part of a key ID before its colon): counted in a Map, so
    // `__proto__` or `constructor` are names like any other, then returned as own properties.
    const counts = new Map<string, number>();
    for (const row of rows) counts.set(row.algorithm, (counts.get(row.algorithm) ?? 0) + 1);
    return Object.fromEntries(counts);
  }

  async get(userId: string, deviceId: string, id: string): Promise<JsonValue | undefined> {
    const row = fromRow<OneTimeKeyRow>(await this.ctx.t.get(T.oneTimeKeys, [userId, deviceId, ...splitKeyId(id)]));
    return row?.key;
  }

  async add(userId: string, deviceId: string, keys: Record<string, JsonValue>): Promise<void> {
    this.ctx.assertWritable();
    for (const [id, key] of Object.entries(keys)) {
      const [algorithm, keyId] = splitKeyId(id);
      await this.ctx.t.put(T.oneTimeKeys, toRow({ userId, deviceId, algorithm, keyId, key } satisfies OneTimeKeyRow));
    }
    this.ctx.noteKeys(userId, deviceId);
  }

  async claim(userId: string, deviceId: string, algorithm: string): Promise<ClaimedKey | undefined> {
    this.ctx.assertWritable();
    const [row] = fromRows<OneTimeKeyRow>(
      await this.ctx.t.scan(T.oneTimeKeys, { prefix: [userId, deviceId, algorithm], limit: 1 }),
    );
    if (!row) return undefined;
    await this.ctx.t.delete(T.oneTimeKeys, [userId, deviceId, algorithm, row.keyId]);
    this.ctx.noteKeys(userId, deviceId);
    return { id: `${algorithm}:${row.keyId}`, key: row.key };
  }

  async deleteForDevice(userId: string, deviceId: string): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.deleteRange(T.oneTimeKeys, { prefix: [userId, deviceId] });
    this.ctx.noteKeys(userId, deviceId);
  }
}

export class FallbackKeys implements FallbackKeysStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(userId: string, deviceId: string, algorithm: string): Promise<FallbackKeyRecord | undefined> {
    return fromRow<FallbackKeyRecord>(await this.ctx.t.get(T.fallbackKeys, [userId, deviceId, algorithm]));
  }

  async unusedAlgorithms(userId: string, deviceId: string): Promise<string[]> {
    const rows = fromRows<FallbackKeyRecord>(await this.ctx.t.scan(T.fallbackKeys, { prefix: [userId, deviceId] }));
    return rows.filter((row) => !row.used).map((row) => row.algorithm);
  }

  async put(userId: string, deviceId: string, id: string, key: JsonValue): Promise<void> {
    this.ctx.assertWritable();
    const [algorithm, keyId] = splitKeyId(id);
    const record: FallbackKeyRecord = { userId, deviceId, algorithm, keyId, key, used: false };
    await this.ctx.t.put(T.fallbackKeys, toRow(record));
    this.ctx.noteKeys(userId, deviceId);
  }

  async claim(userId: string, deviceId: string, algorithm: string): Promise<ClaimedKey | undefined> {
    this.ctx.assertWritable();
    const record = await this.get(userId, deviceId, algorithm);
    if (!record) return undefined;
    if (!record.used) {
      await this.ctx.t.put(T.fallbackKeys, toRow({ ...record, used: true }));
      this.ctx.noteKeys(userId, deviceId);
    }
    return { id: `${algorithm}:${record.keyId}`, key: record.key };
  }

  async deleteForDevice(userId: string, deviceId: string): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.deleteRange(T.fallbackKeys, { prefix: [userId, deviceId] });
    this.ctx.noteKeys(userId, deviceId);
  }
}

export class ToDevice implements ToDeviceStore {
  constructor(private readonly ctx: TxnContext) {}

  async list(userId: string, deviceId: string, window: Omit<StreamWindow, 'dir'>, onCorrupt?: OnCorruptRow): Promise<ToDeviceRecord[]> {
    const query = windowQuery([userId, deviceId], 1, streamWindow({ ...window, dir: 'f' }));
    return fromRows<ToDeviceRecord>(await this.ctx.t.scan(T.toDevice, { ...query, onCorrupt }));
  }

  async add(userId: string, deviceId: string, message: ToDeviceMessage): Promise<ToDeviceRecord> {
    this.ctx.assertWritable();
    const streamOrdering = await this.ctx.nextStreamPosition();
    const record: ToDeviceRecord = {
      userId,
      deviceId,
      streamOrdering,
      sender: message.sender,
      type: message.type,
      content: message.content,
    };
    await this.ctx.t.put(T.toDevice, toRow(record));
    this.ctx.note({ kind: 'toDevice', userId, deviceId, streamOrdering });
    return record;
  }

  async deleteUpTo(userId: string, deviceId: string, upTo: number): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.deleteRange(T.toDevice, { lower: [userId, deviceId, -Infinity], upper: [userId, deviceId, upTo] });
  }

  async keepNewest(userId: string, deviceId: string, keep: number): Promise<number> {
    this.ctx.assertWritable();
    const excess = (await this.ctx.t.count(T.toDevice, { prefix: [userId, deviceId] })) - keep;
    if (excess <= 0) return 0;
    // Only the rows to drop are read (one, when a full inbox gains one), to find where they end.
    const oldest = await this.ctx.t.scan(T.toDevice, { prefix: [userId, deviceId], limit: excess });
    const upTo = fromRows<ToDeviceRecord>(oldest).at(-1)!.streamOrdering;
    await this.deleteUpTo(userId, deviceId, upTo);
    return excess;
  }
}

export class DeviceLists implements DeviceListsStore {
  constructor(private readonly ctx: TxnContext) {}

  async changes(window: Omit<StreamWindow, 'dir'>): Promise<string[]> {
    const query = windowQuery([], 1, streamWindow({ ...window, dir: 'f' }));
    const rows = fromRows<DeviceListChange>(await this.ctx.t.scan(T.deviceLists, query));
    // Re-inserting moves a user to the end: users come out in order of their last change.
    const users = new Set<string>();
    for (const row of rows) {
      users.delete(row.userId);
      users.add(row.userId);
    }
    return [...users];
  }

  async add(userId: string): Promise<DeviceListChange> {
    this.ctx.assertWritable();
    const streamOrdering = await this.ctx.nextStreamPosition();
    await this.ctx.t.put(T.deviceLists, { streamOrdering, userId });
    this.ctx.note({ kind: 'deviceList', userId, streamOrdering });
    return { userId, streamOrdering };
  }
}

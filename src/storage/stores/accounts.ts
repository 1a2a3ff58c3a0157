/**
 * Local accounts: users, their devices and access tokens, uploaded filters,
 * and account data (global and per room), the last on the stream so /sync can
 * send only what changed.
 */
import type { JsonObject } from '../../core/index.js';
import { type OnCorruptRow, StorageError } from '../errors.js';
import { I, T } from '../schema.js';
import { accessTokenHash } from '../token-hash.js';
import type {
  AccessTokenRecord,
  AccessTokensStore,
  AccountDataRecord,
  AccountDataStore,
  DeviceRecord,
  DevicesStore,
  FiltersStore,
  NewAccessToken,
  StreamWindow,
  UserRecord,
  UsersStore,
} from '../types.js';
import { streamWindow, type TxnContext, windowQuery } from './context.js';
import { fromRow, fromRows, patched, toRow } from './rows.js';

export class Users implements UsersStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(userId: string): Promise<UserRecord | undefined> {
    return fromRow<UserRecord>(await this.ctx.t.get(T.users, [userId]));
  }

  async list(options: { after?: string; limit?: number } = {}): Promise<UserRecord[]> {
    const range = options.after === undefined ? {} : { lower: [options.after], lowerOpen: true };
    return fromRows<UserRecord>(await this.ctx.t.scan(T.users, { ...range, limit: options.limit }));
  }

  async add(user: UserRecord): Promise<void> {
    this.ctx.assertWritable();
    if (await this.get(user.userId)) throw new StorageError('EXISTS', `user ${user.userId} exists`);
    await this.ctx.t.put(T.users, toRow(user));
  }

  async update(userId: string, patch: Partial<Omit<UserRecord, 'userId'>>): Promise<UserRecord> {
    this.ctx.assertWritable();
    const user = await this.get(userId);
    if (!user) throw new StorageError('NOT_FOUND', `user ${userId} does not exist`);
    const next = patched(user, patch);
    await this.ctx.t.put(T.users, toRow(next));
    return next;
  }
}

export class Devices implements DevicesStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(userId: string, deviceId: string): Promise<DeviceRecord | undefined> {
    return fromRow<DeviceRecord>(await this.ctx.t.get(T.devices, [userId, deviceId]));
  }

  async forUser(userId: string): Promise<DeviceRecord[]> {
    return fromRows<DeviceRecord>(await this.ctx.t.scan(T.devices, { prefix: [userId] }));
  }

  async put(device: DeviceRecord): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.put(T.devices, toRow(device));
  }

  async update(
    userId: string,
    deviceId: string,
    patch: Partial<Omit<DeviceRecord, 'userId' | 'deviceId'>>,
  ): Promise<DeviceRecord> {
    this.ctx.assertWritable();
    const device = await this.get(userId, deviceId);
    if (!device) throw new StorageError('NOT_FOUND', `device ${deviceId} of ${userId} does not exist`);
    const next = patched(device, patch);
    await this.ctx.t.put(T.devices, toRow(next));
    return next;
  }

  async delete(userId: string, deviceId: string): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.delete(T.devices, [userId, deviceId]);
  }
}

/** Tokens are stored and found by their hash (migration 4); the token itself never reaches a row. */
export class AccessTokens implements AccessTokensStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(token: string): Promise<AccessTokenRecord | undefined> {
    return fromRow<AccessTokenRecord>(await this.ctx.t.get(T.accessTokens, [accessTokenHash(token)]));
  }

  async forDevice(userId: string, deviceId: string): Promise<AccessTokenRecord[]> {
    const query = { index: I.accessTokensByDevice, prefix: [userId, deviceId] };
    return fromRows<AccessTokenRecord>(await this.ctx.t.scan(T.accessTokens, query));
  }

  async put({ token, userId, deviceId, createdAt }: NewAccessToken): Promise<void> {
    this.ctx.assertWritable();
    const record: AccessTokenRecord = { tokenHash: accessTokenHash(token), userId, deviceId, createdAt };
    await this.ctx.t.put(T.accessTokens, toRow(record));
  }

  async delete(token: string): Promise<void> {
    this.ctx.assertWritable();
    await this.deleteHash(accessTokenHash(token));
  }

  async deleteForDevice(userId: string, deviceId: string, options: { except?: string } = {}): Promise<void> {
    this.ctx.assertWritable();
    const kept = options.except === undefined ? undefined : accessTokenHash(options.except);
    for (const record of await this.forDevice(userId, deviceId)) {
      if (record.tokenHash !== kept) await this.deleteHash(record.tokenHash);
    }
  }

  private async deleteHash(tokenHash: string): Promise<void> {
    await this.ctx.t.delete(T.accessTokens, [tokenHash]);
    this.ctx.noteRevokedToken(tokenHash);
  }
}

export class Filters implements FiltersStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(userId: string, filterId: string): Promise<JsonObject | undefined> {
    const row = await this.ctx.t.get(T.filters, [userId, filterId]);
    return row?.filter as JsonObject | undefined;
  }

  async create(userId: string, filter: JsonObject): Promise<string> {
    this.ctx.assertWritable();
    const filterId = String(await this.ctx.nextId('filter'));
    await this.ctx.t.put(T.filters, { userId, filterId, filter });
    return filterId;
  }
}

export class AccountData implements AccountDataStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(userId: string, type: string, roomId = ''): Promise<AccountDataRecord | undefined> {
    return fromRow<AccountDataRecord>(await this.ctx.t.get(T.accountData, [userId, roomId, type]));
  }

  async list(userId: string, roomId = '', onCorrupt?: OnCorruptRow): Promise<AccountDataRecord[]> {
    return fromRows<AccountDataRecord>(await this.ctx.t.scan(T.accountData, { prefix: [userId, roomId], onCorrupt }));
  }

  async changes(userId: string, window: StreamWindow, onCorrupt?: OnCorruptRow): Promise<AccountDataRecord[]> {
    const query = windowQuery([userId], 1, streamWindow(window));
    return fromRows<AccountDataRecord>(
      await this.ctx.t.scan(T.accountData, { ...query, index: I.accountDataByUserStream, onCorrupt }),
    );
  }

  async put(userId: string, type: string, content: JsonObject, roomId = ''): Promise<AccountDataRecord> {
    this.ctx.assertWritable();
    const streamOrdering = await this.ctx.nextStreamPosition();
    const record: AccountDataRecord = { userId, roomId, type, content, streamOrdering };
    await this.ctx.t.put(T.accountData, toRow(record));
    this.ctx.note({ kind: 'accountData', userId, roomId, type, streamOrdering });
    return record;
  }
}

/**
 * Rooms as this server knows them: the room record, the public directory,
 * memberships indexed both ways (a user's rooms for /sync, a room's members
 * for fan-out), aliases, and read receipts (on the stream, so /sync can send
 * only what changed).
 */
import { StorageError } from '../errors.js';
import { I, T } from '../schema.js';
import type {
  AliasesStore,
  AliasRecord,
  DirectoryStore,
  Membership,
  MembershipRecord,
  MembershipsStore,
  ReceiptRecord,
  ReceiptsStore,
  RoomRecord,
  RoomsStore,
  StreamWindow,
} from '../types.js';
import { streamWindow, type TxnContext, windowQuery } from './context.js';
import { fromRow, fromRows, toRow } from './rows.js';

export class Rooms implements RoomsStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(roomId: string): Promise<RoomRecord | undefined> {
    return fromRow<RoomRecord>(await this.ctx.t.get(T.rooms, [roomId]));
  }

  async list(): Promise<RoomRecord[]> {
    return fromRows<RoomRecord>(await this.ctx.t.scan(T.rooms));
  }

  async put(room: RoomRecord): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.put(T.rooms, toRow(room));
  }
}

export class Directory implements DirectoryStore {
  constructor(private readonly ctx: TxnContext) {}

  async isPublic(roomId: string): Promise<boolean> {
    return (await this.ctx.t.count(T.directory, { prefix: [roomId] })) > 0;
  }

  async list(): Promise<string[]> {
    return (await this.ctx.t.scan(T.directory)).map((row) => row.roomId as string);
  }

  async setPublic(roomId: string, visible: boolean): Promise<void> {
    this.ctx.assertWritable();
    if (visible) await this.ctx.t.put(T.directory, { roomId });
    else await this.ctx.t.delete(T.directory, [roomId]);
  }
}

export class Memberships implements MembershipsStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(roomId: string, userId: string): Promise<MembershipRecord | undefined> {
    return fromRow<MembershipRecord>(await this.ctx.t.get(T.memberships, [userId, roomId]));
  }

  async forUser(userId: string, membership?: Membership): Promise<MembershipRecord[]> {
    const rows = fromRows<MembershipRecord>(await this.ctx.t.scan(T.memberships, { prefix: [userId] }));
    return membership ? rows.filter((row) => row.membership === membership) : rows;
  }

  async forRoom(roomId: string, membership?: Membership): Promise<MembershipRecord[]> {
    const rows = fromRows<MembershipRecord>(
      await this.ctx.t.scan(T.memberships, { index: I.membershipsByRoom, prefix: [roomId] }),
    );
    return membership ? rows.filter((row) => row.membership === membership) : rows;
  }

  async set(record: MembershipRecord): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.put(T.memberships, toRow(record));
    this.ctx.noteMembership({ roomId: record.roomId, userId: record.userId, membership: record.membership, eventId: record.eventId });
    this.ctx.note({ kind: 'membership', roomId: record.roomId, userId: record.userId, membership: record.membership });
  }
}

export class Aliases implements AliasesStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(alias: string): Promise<AliasRecord | undefined> {
    return fromRow<AliasRecord>(await this.ctx.t.get(T.aliases, [alias]));
  }

  async forRoom(roomId: string): Promise<AliasRecord[]> {
    return fromRows<AliasRecord>(await this.ctx.t.scan(T.aliases, { index: I.aliasesByRoom, prefix: [roomId] }));
  }

  async add(record: AliasRecord): Promise<void> {
    this.ctx.assertWritable();
    if (await this.get(record.alias)) throw new StorageError('EXISTS', `alias ${record.alias} is taken`);
    await this.ctx.t.put(T.aliases, toRow(record));
  }

  async delete(alias: string): Promise<void> {
    this.ctx.assertWritable();
    await this.ctx.t.delete(T.aliases, [alias]);
  }
}

export class Receipts implements ReceiptsStore {
  constructor(private readonly ctx: TxnContext) {}

  async get(roomId: string, receiptType: string, userId: string, threadId = ''): Promise<ReceiptRecord | undefined> {
    return fromRow<ReceiptRecord>(await this.ctx.t.get(T.receipts, [roomId, receiptType, userId, threadId]));
  }

  async forRoom(roomId: string): Promise<ReceiptRecord[]> {
    return fromRows<ReceiptRecord>(await this.ctx.t.scan(T.receipts, { prefix: [roomId] }));
  }

  async changes(roomId: string, window: StreamWindow): Promise<ReceiptRecord[]> {
    const query = windowQuery([roomId], 1, streamWindow(window));
    return fromRows<ReceiptRecord>(await this.ctx.t.scan(T.receipts, { ...query, index: I.receiptsByRoomStream }));
  }

  async put(
    receipt: Omit<ReceiptRecord, 'streamOrdering' | 'threadId'> & { threadId?: string },
  ): Promise<ReceiptRecord> {
    this.ctx.assertWritable();
    const streamOrdering = await this.ctx.nextStreamPosition();
    const record: ReceiptRecord = {
      roomId: receipt.roomId,
      receiptType: receipt.receiptType,
      userId: receipt.userId,
      threadId: receipt.threadId ?? '',
      eventId: receipt.eventId,
      ts: receipt.ts,
      streamOrdering,
    };
    await this.ctx.t.put(T.receipts, toRow(record));
    this.ctx.note({ kind: 'receipt', roomId: record.roomId, userId: record.userId, streamOrdering });
    return record;
  }
}

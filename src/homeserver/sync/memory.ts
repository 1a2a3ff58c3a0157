/**
 * What /sync keeps in memory so that the usual incremental sync (a long-poll
 * woken by a new event, or one that finds nothing new) is answered without a
 * storage transaction: the recent timeline events of each room, each user's
 * memberships and each device's key counts. All of it follows the storage
 * exactly through Storage.observe, which reports every committed write in
 * commit order, so it is the storage as of the last commit the notifier has
 * seen (`SyncNotifier.position`).
 *
 * `readTxn()` offers this as a ReadTxn that answers only what it holds and
 * throws CacheMiss for anything else; /sync then computes the same response
 * in a real read transaction instead. Answers are never approximations: a
 * timeline range is served only when every event of that range is held.
 *
 * Holding: every timeline event stored after `floor` (the stream position when
 * the notifier started) is kept, up to ROOM_EVENTS per room and TOTAL_EVENTS in
 * all; dropping a room's oldest events raises that room's floor. Memberships
 * and key counts are learned from the reads of /sync itself, and only when no
 * write of that kind committed during the read.
 */
import type {
  EventRecord,
  MembershipRecord,
  ReadTxn,
  Storage,
  StreamWindow,
  WriteSummary,
} from '../../storage/types.js';
import type { SyncNotifier } from './notifier.js';

/** Thrown by the memory's ReadTxn for anything it does not hold. */
export class CacheMiss extends Error {
  constructor() {
    super('not held in memory');
    this.name = 'CacheMiss';
  }
}

const MISS = new CacheMiss();
const miss = (): Promise<never> => Promise.reject(MISS);

/** Timeline events kept per room; older ones are read from storage. */
const ROOM_EVENTS = 256;
/** Timeline events kept in all; the rooms written longest ago go first. */
const TOTAL_EVENTS = 10_000;
/** Users whose memberships, and devices whose key counts, are kept. */
const USERS = 4096;

interface RoomEvents {
  /** Ascending stream ordering; every event of the room after `floor` is here. */
  records: EventRecord[];
  floor: number;
}

interface KeyCounts {
  counts: Record<string, number>;
  unused: string[];
}

/** What one storage read of /sync may teach the memory, with the write counts seen before it began. */
export interface Learner {
  memberships(userId: string, records: readonly MembershipRecord[]): void;
  keys(userId: string, deviceId: string, counts: Record<string, number>, unused: readonly string[]): void;
}

const pair = (a: string, b: string) => `${a}\n${b}`;

export class SyncMemory {
  /** Rooms by least recently written first. */
  private readonly rooms = new Map<string, RoomEvents>();
  private readonly byId = new Map<string, EventRecord>();
  /** Floors of rooms whose events were all dropped. */
  private readonly droppedFloors = new Map<string, number>();
  private total = 0;
  private readonly memberships = new Map<string, MembershipRecord[]>();
  private readonly keyCounts = new Map<string, KeyCounts>();
  /** Count committed membership and key writes: a read that saw them change may hold older data. */
  private membershipWrites = 0;
  private keyWrites = 0;
  private readonly stop: (() => void) | undefined;

  constructor(
    storage: Storage,
    private readonly notifier: SyncNotifier,
  ) {
    // Observed from before the notifier reads its starting position: every event after it is seen here.
    this.stop = storage.observe?.((written) => this.apply(written));
  }

  close(): void {
    this.stop?.();
    this.rooms.clear();
    this.byId.clear();
    this.memberships.clear();
    this.keyCounts.clear();
  }

  /**
   * A read transaction over what memory holds, as of the notifier's position,
   * for an incremental sync from `since`; undefined when memory cannot serve
   * one (no observing storage, or `since` outside what the notifier has seen).
   */
  readTxn(since: number): ReadTxn | undefined {
    const position = this.notifier.position;
    if (!this.stop || position === undefined || !this.notifier.knows(since) || since > position) return undefined;
    return memoryTxn(this, position);
  }

  /** Records what a /sync read found, unless writes of that kind committed since this was called. */
  learner(): Learner {
    const membershipWrites = this.membershipWrites;
    const keyWrites = this.keyWrites;
    return {
      memberships: (userId, records) => {
        if (!this.stop || this.membershipWrites !== membershipWrites) return;
        setBounded(this.memberships, userId, records.map((r) => ({ ...r })));
      },
      keys: (userId, deviceId, counts, unused) => {
        if (!this.stop || this.keyWrites !== keyWrites) return;
        setBounded(this.keyCounts, pair(userId, deviceId), { counts: { ...counts }, unused: [...unused] });
      },
    };
  }

  // -------------------------------------------------------------------------
  // Answers (undefined: not held)

  membershipsOf(userId: string): MembershipRecord[] | undefined {
    return this.memberships.get(userId)?.map((r) => ({ ...r }));
  }

  keysOf(userId: string, deviceId: string): KeyCounts | undefined {
    const held = this.keyCounts.get(pair(userId, deviceId));
    return held && { counts: { ...held.counts }, unused: [...held.unused] };
  }

  event(eventId: string): EventRecord | undefined {
    return this.byId.get(eventId);
  }

  /** The room's timeline in `window` (the storage's window rules), if every event it covers is held. */
  range(roomId: string, window: StreamWindow): EventRecord[] | undefined {
    const floor = this.floorOf(roomId);
    if (floor === undefined) return undefined;
    const records = this.rooms.get(roomId)?.records ?? [];
    const limit = window.limit ?? Infinity;
    const out: EventRecord[] = [];
    if (limit <= 0) return out;
    if (window.dir === 'f') {
      // (from, to]: held when nothing before `from` is needed, i.e. from >= floor.
      if (window.from === undefined || window.from < floor) return undefined;
      for (const record of records) {
        const at = record.streamOrdering!;
        if (at <= window.from) continue;
        if (window.to !== undefined && at > window.to) break;
        out.push(record);
        if (out.length >= limit) break;
      }
      return out;
    }
    // (to, from] descending: held if it fills up above the floor, or if `to` is at or above it.
    for (let i = records.length - 1; i >= 0; i--) {
      const at = records[i].streamOrdering!;
      if (at <= floor || (window.to !== undefined && at <= window.to)) break;
      if (window.from !== undefined && at > window.from) continue;
      out.push(records[i]);
      if (out.length >= limit) return out;
    }
    return window.to !== undefined && window.to >= floor ? out : undefined;
  }

  private floorOf(roomId: string): number | undefined {
    const start = this.notifier.knownFrom;
    if (start === undefined) return undefined;
    const floor = this.rooms.get(roomId)?.floor ?? this.droppedFloors.get(roomId) ?? start;
    return Math.max(floor, start);
  }

  // -------------------------------------------------------------------------
  // Following the storage

  private apply(written: WriteSummary): void {
    for (const record of written.events) this.applyEvent(record);
    if (written.memberships.length > 0) {
      this.membershipWrites++;
      for (const record of written.memberships) this.applyMembership(record);
    }
    if (written.keyDevices.length > 0) {
      this.keyWrites++;
      for (const { userId, deviceId } of written.keyDevices) this.keyCounts.delete(pair(userId, deviceId));
    }
  }

  private applyEvent(record: EventRecord): void {
    const held = this.byId.get(record.eventId);
    // Outliers are in no timeline; an update of an event not held concerns one older than its room's floor.
    if (!held && (record.outlier || record.streamOrdering === undefined)) return;
    // Held as reported, not copied (a copy per event would sit between the commit and the woken /sync):
    // records are immutable everywhere they go, as WriteSummary requires.
    const room = this.roomFor(record.roomId);
    if (held) {
      const at = room.records.lastIndexOf(held);
      if (at >= 0) room.records[at] = record;
      this.byId.set(record.eventId, record);
      return;
    }
    // Commits come in stream order, so this is nearly always an append.
    let at = room.records.length;
    while (at > 0 && room.records[at - 1].streamOrdering! > record.streamOrdering!) at--;
    if (at === room.records.length) room.records.push(record);
    else room.records.splice(at, 0, record);
    this.byId.set(record.eventId, record);
    this.total++;
    if (room.records.length > ROOM_EVENTS) this.dropOldest(room);
    // Most recently written last, so the rooms to drop come first.
    this.rooms.delete(record.roomId);
    this.rooms.set(record.roomId, room);
    while (this.total > TOTAL_EVENTS) {
      const [oldestId, oldest] = this.rooms.entries().next().value as [string, RoomEvents];
      while (oldest.records.length > 0) this.dropOldest(oldest);
      this.rooms.delete(oldestId);
      this.droppedFloors.set(oldestId, oldest.floor);
    }
  }

  private roomFor(roomId: string): RoomEvents {
    let room = this.rooms.get(roomId);
    if (!room) {
      room = { records: [], floor: this.droppedFloors.get(roomId) ?? 0 };
      this.droppedFloors.delete(roomId);
      this.rooms.set(roomId, room);
    }
    return room;
  }

  private dropOldest(room: RoomEvents): void {
    const dropped = room.records.shift()!;
    this.byId.delete(dropped.eventId);
    this.total--;
    room.floor = Math.max(room.floor, dropped.streamOrdering!);
  }

  private applyMembership(record: MembershipRecord): void {
    const list = this.memberships.get(record.userId);
    if (!list) return;
    // Kept in the storage's order (by room ID, UTF-16 code units).
    let at = 0;
    while (at < list.length && list[at].roomId < record.roomId) at++;
    if (list[at]?.roomId === record.roomId) list[at] = { ...record };
    else list.splice(at, 0, { ...record });
  }
}

function setBounded<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > USERS) map.delete(map.keys().next().value as string);
}

/**
 * A ReadTxn over the memory, as of stream position `position`. Stores and
 * methods it does not hold answer with CacheMiss.
 */
function memoryTxn(memory: SyncMemory, position: number): ReadTxn {
  const held: Partial<Record<keyof ReadTxn, object>> = {
    stream: { current: () => Promise.resolve(position) },
    memberships: {
      forUser: (userId: string, membership?: string) => {
        const records = memory.membershipsOf(userId);
        if (!records) return miss();
        return Promise.resolve(membership ? records.filter((r) => r.membership === membership) : records);
      },
    },
    oneTimeKeys: {
      counts: (userId: string, deviceId: string) => {
        const keys = memory.keysOf(userId, deviceId);
        return keys ? Promise.resolve(keys.counts) : miss();
      },
    },
    fallbackKeys: {
      unusedAlgorithms: (userId: string, deviceId: string) => {
        const keys = memory.keysOf(userId, deviceId);
        return keys ? Promise.resolve(keys.unused) : miss();
      },
    },
    events: {
      get: (eventId: string) => {
        const record = memory.event(eventId);
        return record ? Promise.resolve(record) : miss();
      },
      getMany: (eventIds: readonly string[]) => {
        const found = new Map<string, EventRecord>();
        for (const eventId of eventIds) {
          const record = memory.event(eventId);
          if (!record) return miss();
          found.set(eventId, record);
        }
        return Promise.resolve(found);
      },
    },
    timeline: {
      range: (roomId: string, window: StreamWindow) => {
        // Nothing after `position` exists as far as this transaction is concerned.
        const bounded: StreamWindow =
          window.dir === 'f'
            ? { ...window, to: Math.min(window.to ?? position, position) }
            : { ...window, from: Math.min(window.from ?? position, position) };
        const records = memory.range(roomId, bounded);
        return records ? Promise.resolve(records) : miss();
      },
    },
  };
  // `then` stays undefined so that neither is ever taken for a promise.
  const store = (name: keyof ReadTxn): object =>
    new Proxy(held[name] ?? {}, {
      get: (target, method) =>
        method in target ? (target as Record<string | symbol, unknown>)[method] : method === 'then' ? undefined : miss,
    });
  return new Proxy({} as ReadTxn, { get: (_, name) => (name === 'then' ? undefined : store(name as keyof ReadTxn)) });
}

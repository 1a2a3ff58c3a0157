/**
 * Reading rooms for clients, within one storage read transaction: events
 * (cached for the request), room versions and state groups (immutable, so
 * cached across requests), the state before or after an event, the reads
 * the access module asks for (it implements access/room-access.ts's
 * AccessReader; who may see what is decided there), and turning stored events
 * into the client format (redactions applied, the filter's
 * `event_fields`/`event_format` honoured).
 */
import { redactEvent, stateKeyOf, type StateMap } from '../../core/index.js';
import type { EventRecord, MembershipRecord, ReadTxn } from '../../storage/types.js';
import type { AccessReader } from '../access/room-access.js';
import { toClientEvent, type ClientEvent } from '../events/client-format.js';
import { onlyEventFields } from './filters.js';
import { forgottenRoomKey } from '../rooms/types.js';
import { LruMap } from './lru.js';

/** Caches of immutable data shared by every request of one homeserver. */
export class ReadCaches {
  readonly versions = new Map<string, string>();
  /** State group ID -> full state. Groups never change once written. */
  readonly groups = new LruMap<number, StateMap>(512);
  /** Event ID -> `membership` / `history_visibility` value; both survive redaction. */
  readonly stateValues = new LruMap<string, string>(8192);
  /**
   * Users' own member events (what /sync reads for every room on every call).
   * What is read from them (stream ordering, membership, unsigned.prev_content)
   * never changes, not even by redaction.
   */
  readonly memberEvents = new LruMap<string, EventRecord>(4096);

  /**
   * A state group's full state through `groups` (one homeserver-wide instance: sync, client reads and
   * receiving federation events share it). Callers must not modify the returned map.
   */
  async stateGroup(txn: Pick<ReadTxn, 'stateGroups'>, groupId: number): Promise<StateMap> {
    let state = this.groups.get(groupId);
    if (!state) {
      state = await txn.stateGroups.load(groupId);
      this.groups.set(groupId, state);
    }
    return state;
  }
}

export interface FormatOptions {
  /** Leave out room_id (sync nests events under their room). */
  omitRoomId?: boolean;
  eventFields?: readonly string[];
  /** 'federation' returns stored PDUs (filter `event_format`). */
  eventFormat?: 'client' | 'federation';
  /** The requesting device's transaction ID for an event it sent, if known. */
  transactionId?: (eventId: string) => string | undefined;
}

export class RoomReader implements AccessReader {
  private readonly eventCache = new Map<string, EventRecord | null>();

  constructor(
    readonly txn: ReadTxn,
    readonly caches: ReadCaches,
    readonly now: number,
  ) {}

  /** Events by ID (missing ones left out), through the request cache. */
  async getEvents(ids: Iterable<string>): Promise<Map<string, EventRecord>> {
    const out = new Map<string, EventRecord>();
    const missing: string[] = [];
    for (const id of ids) {
      const cached = this.eventCache.get(id);
      if (cached) out.set(id, cached);
      else if (cached === undefined) missing.push(id);
    }
    if (missing.length > 0) {
      const found = await this.txn.events.getMany(missing);
      for (const id of missing) {
        const record = found.get(id);
        this.eventCache.set(id, record ?? null);
        if (record) out.set(id, record);
      }
    }
    return out;
  }

  async getEvent(id: string): Promise<EventRecord | undefined> {
    return (await this.getEvents([id])).get(id);
  }

  /** Member events by ID through the long-lived cache (see ReadCaches.memberEvents). */
  async getMemberEvents(ids: readonly string[]): Promise<Map<string, EventRecord>> {
    const out = new Map<string, EventRecord>();
    const missing: string[] = [];
    for (const id of ids) {
      const cached = this.caches.memberEvents.get(id);
      if (cached) out.set(id, cached);
      else missing.push(id);
    }
    if (missing.length > 0) {
      for (const [id, record] of await this.getEvents(missing)) {
        this.caches.memberEvents.set(id, record);
        out.set(id, record);
      }
    }
    return out;
  }

  /** Remembers records read some other way (timeline ranges). */
  remember(records: Iterable<EventRecord>): void {
    for (const record of records) this.eventCache.set(record.eventId, record);
  }

  async roomVersion(roomId: string): Promise<string | undefined> {
    let version = this.caches.versions.get(roomId);
    if (version === undefined) {
      version = (await this.txn.rooms.get(roomId))?.roomVersion;
      if (version !== undefined) this.caches.versions.set(roomId, version);
    }
    return version;
  }

  stateGroup(groupId: number): Promise<StateMap> {
    return this.caches.stateGroup(this.txn, groupId);
  }

  /** The room state just before the event; undefined if the server never recorded it. */
  async stateBefore(record: EventRecord): Promise<StateMap | undefined> {
    const groups = await this.txn.eventState.of(record);
    return groups ? this.stateGroup(groups.before) : undefined;
  }

  /** The room state just after the event. */
  async stateAfter(record: EventRecord): Promise<StateMap | undefined> {
    const groups = await this.txn.eventState.of(record);
    return groups ? this.stateGroup(groups.after) : undefined;
  }

  /** The room state as of stream position `stream`: after the room's last event at or before it. */
  async stateAtStream(roomId: string, stream: number): Promise<StateMap> {
    const [last] = await this.txn.timeline.range(roomId, { dir: 'b', from: stream, limit: 1 });
    if (!last) return new Map();
    return (await this.stateAfter(last)) ?? new Map();
  }

  async membership(roomId: string, userId: string): Promise<MembershipRecord | undefined> {
    return this.txn.memberships.get(roomId, userId);
  }

  async hasForgotten(userId: string, roomId: string): Promise<boolean> {
    return (await this.txn.meta.get(forgottenRoomKey(userId, roomId))) !== undefined;
  }

  async currentStateId(roomId: string, type: string, stateKey: string): Promise<string | undefined> {
    return this.txn.currentState.get(roomId, type, stateKey);
  }

  async currentStateIds(roomId: string): Promise<StateMap> {
    return this.txn.currentState.load(roomId);
  }

  async joinedUserIds(roomId: string): Promise<string[]> {
    return (await this.txn.memberships.forRoom(roomId, 'join')).map((m) => m.userId);
  }

  /** A string field of a state event's content, cached (membership, history_visibility). */
  async stateValue(eventId: string | undefined, field: 'membership' | 'history_visibility'): Promise<string | undefined> {
    if (eventId === undefined) return undefined;
    const key = `${field}\n${eventId}`;
    const cached = this.caches.stateValues.get(key);
    if (cached !== undefined) return cached;
    const record = await this.getEvent(eventId);
    const value = record?.event.content?.[field];
    if (typeof value !== 'string') return undefined;
    this.caches.stateValues.set(key, value);
    return value;
  }

  /** The membership the member event replaced (its prev_content), if it replaced one. */
  async previousMembership(record: EventRecord): Promise<string | undefined> {
    const unsigned = record.event.unsigned ?? {};
    const prevContent = unsigned.prev_content as { membership?: unknown } | undefined;
    if (prevContent && typeof prevContent.membership === 'string') return prevContent.membership;
    if (typeof unsigned.replaces_state === 'string') return this.stateValue(unsigned.replaces_state, 'membership');
    if (unsigned.prev_content === undefined && unsigned.replaces_state === undefined) {
      // The engine may not annotate events; the state before the event knows.
      const before = await this.stateBefore(record);
      const previous = before?.get(stateKeyOf('m.room.member', record.event.state_key ?? ''));
      return this.stateValue(previous, 'membership');
    }
    return undefined;
  }

  /** Stored events in the client format, redactions applied. */
  async format(records: readonly EventRecord[], options: FormatOptions = {}): Promise<Record<string, unknown>[]> {
    const redactionIds = new Set<string>();
    for (const record of records) if (record.redactedBy) redactionIds.add(record.redactedBy);
    const redactions = redactionIds.size > 0 ? await this.getEvents(redactionIds) : new Map<string, EventRecord>();
    const out: Record<string, unknown>[] = [];
    for (const record of records) {
      const version = (await this.roomVersion(record.roomId)) ?? '12';
      let event: Record<string, unknown>;
      if (options.eventFormat === 'federation') {
        const pdu = record.redactedBy ? redactEvent(record.event, version) : record.event;
        event = { ...pdu, event_id: record.eventId, room_id: record.roomId };
      } else {
        let redactedBecause: ClientEvent | undefined;
        if (record.redactedBy) {
          const redaction = redactions.get(record.redactedBy);
          redactedBecause = redaction
            ? toClientEvent(redaction, { now: this.now, roomVersion: version, omitRoomId: options.omitRoomId })
            : { event_id: record.redactedBy, sender: '', type: 'm.room.redaction', content: {}, origin_server_ts: 0 };
        }
        event = toClientEvent(record, {
          now: this.now,
          roomVersion: version,
          omitRoomId: options.omitRoomId,
          redactedBecause,
          transactionId: options.transactionId?.(record.eventId),
        }) as unknown as Record<string, unknown>;
      }
      out.push(options.eventFields ? (onlyEventFields(event, options.eventFields) as Record<string, unknown>) : event);
    }
    return out;
  }
}

/** A state event as invites show it (spec "stripped state"). */
export function strippedState(record: EventRecord): Record<string, unknown> {
  return {
    type: record.event.type,
    state_key: record.event.state_key ?? '',
    content: record.event.content ?? {},
    sender: record.event.sender,
  };
}

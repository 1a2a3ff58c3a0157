/**
 * Reading rooms for clients, within one storage read transaction: events
 * (cached for the request), room versions and state groups (immutable, so
 * cached across requests), the state before or after an event, history
 * visibility (spec "History visibility": which events a user may see), and
 * turning stored events into the client format (redactions applied, the
 * filter's `event_fields`/`event_format` honoured).
 */
import { redactEvent, stateKeyOf, type StateMap } from '../../core/index.js';
import type { EventRecord, Membership, ReadTxn } from '../../storage/types.js';
import { toClientEvent, type ClientEvent } from '../events/client-format.js';
import { onlyEventFields } from './filters.js';
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

/** A user's standing in a room, as the visibility rules need it. */
export interface MembershipView {
  userId: string;
  /** Current membership, if any. */
  membership: Membership | undefined;
  /** The event that set it. */
  memberEvent: EventRecord | undefined;
}

const HV_KEY = stateKeyOf('m.room.history_visibility', '');

export class RoomReader {
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

  async stateGroup(groupId: number): Promise<StateMap> {
    let state = this.caches.groups.get(groupId);
    if (!state) {
      state = await this.txn.stateGroups.load(groupId);
      this.caches.groups.set(groupId, state);
    }
    return state;
  }

  /** The room state just before the event; undefined if the server never recorded it. */
  async stateBefore(record: EventRecord): Promise<StateMap | undefined> {
    const groups = await this.txn.eventState.get(record.eventId);
    return groups ? this.stateGroup(groups.before) : undefined;
  }

  /** The room state just after the event. */
  async stateAfter(record: EventRecord): Promise<StateMap | undefined> {
    const groups = await this.txn.eventState.get(record.eventId);
    return groups ? this.stateGroup(groups.after) : undefined;
  }

  /** The room state as of stream position `stream`: after the room's last event at or before it. */
  async stateAtStream(roomId: string, stream: number): Promise<StateMap> {
    const [last] = await this.txn.timeline.range(roomId, { dir: 'b', from: stream, limit: 1 });
    if (!last) return new Map();
    return (await this.stateAfter(last)) ?? new Map();
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

  /** Drops events the user may not see; keeps order. */
  async visible(roomId: string, view: MembershipView, records: readonly EventRecord[]): Promise<EventRecord[]> {
    return new VisibilityCheck(this, roomId, view).filter(records);
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

/**
 * The spec's history visibility algorithm for one user and room, with two
 * shortcuts that avoid loading state: events after the user's current join
 * are visible, and so are events after the room's current history_visibility
 * event when that setting is world_readable, or shared and the user has been
 * joined. Everything else is judged by the state before the event.
 * Callers stop ranges at a departed user's leave.
 */
class VisibilityCheck {
  private everJoined: boolean | undefined;
  private currentHv: { value: string; stream: number } | undefined;

  constructor(
    private readonly reader: RoomReader,
    private readonly roomId: string,
    private readonly view: MembershipView,
  ) {}

  async filter(records: readonly EventRecord[]): Promise<EventRecord[]> {
    const { view } = this;
    const joinStream = view.membership === 'join' ? view.memberEvent?.streamOrdering : undefined;
    const verdict = new Map<EventRecord, boolean>();
    const undecided: EventRecord[] = [];
    for (const record of records) {
      if (record.rejected !== undefined || record.softFailed) verdict.set(record, false);
      else if (record.event.type === 'm.room.member' && record.event.state_key === view.userId) verdict.set(record, true);
      else if (joinStream !== undefined && (record.streamOrdering ?? 0) >= joinStream) verdict.set(record, true);
      else undecided.push(record);
    }
    if (undecided.length > 0) {
      const hv = await this.currentHistoryVisibility();
      const everJoined = await this.hasBeenJoined();
      const slow: EventRecord[] = [];
      for (const record of undecided) {
        const afterHv = (record.streamOrdering ?? 0) > hv.stream;
        if (afterHv && (hv.value === 'world_readable' || (hv.value === 'shared' && everJoined))) verdict.set(record, true);
        else slow.push(record);
      }
      const states = await Promise.all(slow.map((record) => this.reader.stateBefore(record)));
      for (let i = 0; i < slow.length; i++) verdict.set(slow[i], await this.allowedBy(states[i], everJoined));
    }
    return records.filter((record) => verdict.get(record));
  }

  private async allowedBy(state: StateMap | undefined, everJoined: boolean): Promise<boolean> {
    if (!state) return false;
    const visibility = (await this.reader.stateValue(state.get(HV_KEY), 'history_visibility')) ?? 'shared';
    if (visibility === 'world_readable') return true;
    const membership = await this.reader.stateValue(state.get(stateKeyOf('m.room.member', this.view.userId)), 'membership');
    if (membership === 'join') return true;
    if (visibility === 'shared') return everJoined;
    if (visibility === 'invited') return membership === 'invite';
    return false;
  }

  private async currentHistoryVisibility(): Promise<{ value: string; stream: number }> {
    if (!this.currentHv) {
      const eventId = await this.reader.txn.currentState.get(this.roomId, 'm.room.history_visibility', '');
      const record = eventId ? await this.reader.getEvent(eventId) : undefined;
      const value = record?.event.content?.history_visibility;
      this.currentHv = {
        value: typeof value === 'string' ? value : 'shared',
        // Without the event the room never had one: the default applied throughout.
        stream: record ? (record.streamOrdering ?? Number.MAX_SAFE_INTEGER) : 0,
      };
    }
    return this.currentHv;
  }

  /** "The user joined the room at any point after the event" (shared): currently joined, or joined before leaving. */
  private async hasBeenJoined(): Promise<boolean> {
    if (this.everJoined === undefined) {
      const { membership, memberEvent } = this.view;
      if (membership === 'join') this.everJoined = true;
      else if ((membership === 'leave' || membership === 'ban') && memberEvent) {
        this.everJoined = (await this.reader.previousMembership(memberEvent)) === 'join';
      } else this.everJoined = false;
    }
    return this.everJoined;
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

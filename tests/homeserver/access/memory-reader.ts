/**
 * An in-memory AccessReader over the rooms of fixtures/rooms.json: linear
 * rooms whose events get stream ordering and depth from their order, state
 * before and after each event, current state and memberships as the room
 * engine would record them. Event IDs must be unique across the rooms given. Enough to test access/room-access.ts without a
 * homeserver or storage.
 */
import { stateKeyOf, type PDU, type StateMap } from '../../../src/core/index.js';
import type { AccessReader } from '../../../src/homeserver/access/room-access.js';
import type { EventRecord, Membership, MembershipRecord } from '../../../src/storage/types.js';

/** [id, sender, type, state_key or null, content] */
export type FixtureEvent = [string, string, string, string | null, Record<string, unknown>];

export class MemoryAccessReader implements AccessReader {
  readonly events = new Map<string, EventRecord>();
  /** Room ID -> its events in order. */
  readonly timelines = new Map<string, EventRecord[]>();
  private readonly before = new Map<string, StateMap>();
  private readonly after = new Map<string, StateMap>();
  private readonly current = new Map<string, StateMap>();
  readonly forgotten = new Set<string>();

  constructor(rooms: Record<string, FixtureEvent[]>) {
    let stream = 0;
    for (const [roomId, events] of Object.entries(rooms)) {
      let state: StateMap = new Map();
      const timeline: EventRecord[] = [];
      events.forEach(([eventId, sender, type, stateKey, content], i) => {
        const event = { type, sender, content, room_id: roomId } as unknown as PDU;
        if (stateKey !== null) event.state_key = stateKey;
        const record: EventRecord = { eventId, roomId, event, depth: i + 1, streamOrdering: ++stream, outlier: false };
        this.before.set(eventId, state);
        if (stateKey !== null) {
          const key = stateKeyOf(type, stateKey);
          const replaced = state.get(key);
          // The engine annotates replaced state like this; previousMembership reads it.
          if (replaced !== undefined) event.unsigned = { prev_content: this.events.get(replaced)!.event.content, replaces_state: replaced };
          state = new Map(state).set(key, eventId);
        }
        this.after.set(eventId, state);
        this.events.set(eventId, record);
        timeline.push(record);
      });
      this.current.set(roomId, state);
      this.timelines.set(roomId, timeline);
    }
  }

  async membership(roomId: string, userId: string): Promise<MembershipRecord | undefined> {
    const eventId = this.current.get(roomId)?.get(stateKeyOf('m.room.member', userId));
    if (eventId === undefined) return undefined;
    return { roomId, userId, membership: this.events.get(eventId)!.event.content.membership as Membership, eventId };
  }

  async hasForgotten(userId: string, roomId: string): Promise<boolean> {
    return this.forgotten.has(JSON.stringify([userId, roomId]));
  }

  async currentStateId(roomId: string, type: string, stateKey: string): Promise<string | undefined> {
    return this.current.get(roomId)?.get(stateKeyOf(type, stateKey));
  }

  async currentStateIds(roomId: string): Promise<StateMap> {
    return this.current.get(roomId) ?? new Map();
  }

  async joinedUserIds(roomId: string): Promise<string[]> {
    const out: string[] = [];
    for (const id of this.current.get(roomId)?.values() ?? []) {
      const { event } = this.events.get(id)!;
      if (event.type === 'm.room.member' && event.content.membership === 'join') out.push(event.state_key!);
    }
    return out;
  }

  async getEvent(eventId: string): Promise<EventRecord | undefined> {
    return this.events.get(eventId);
  }

  async stateBefore(record: EventRecord): Promise<StateMap | undefined> {
    return this.before.get(record.eventId);
  }

  async stateAfter(record: EventRecord): Promise<StateMap | undefined> {
    return this.after.get(record.eventId);
  }

  async stateValue(eventId: string | undefined, field: 'membership' | 'history_visibility'): Promise<string | undefined> {
    const value = eventId === undefined ? undefined : this.events.get(eventId)?.event.content[field];
    return typeof value === 'string' ? value : undefined;
  }

  async previousMembership(record: EventRecord): Promise<string | undefined> {
    const previous = (record.event.unsigned?.prev_content as { membership?: unknown } | undefined)?.membership;
    return typeof previous === 'string' ? previous : undefined;
  }
}

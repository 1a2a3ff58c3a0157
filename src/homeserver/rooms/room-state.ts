/**
 * The room engine's in-memory picture of one room: its version rules, its
 * current state (each entry the stored record plus the form the auth rules
 * read: `event_id` attached, redacted if redacted), the state group holding
 * that state, and the forward extremities with their depths. Loaded from
 * storage once per room and changed only after a write that changed the room
 * has committed, so a send needs no reads.
 */
import {
  redactEvent,
  roomVersionRules,
  splitStateKey,
  stateKeyOf,
  type PDU,
  type RoomVersionRules,
  type StateMap,
} from '../../core/index.js';
import type { EventRecord, Membership, ReadTxn } from '../../storage/types.js';

/** One entry of a room's current state. */
export interface StateEntry {
  readonly record: EventRecord;
  /** The event as the auth rules see it: `event_id` attached, redacted if it was redacted. */
  readonly pdu: PDU;
}

/** The PDU the auth rules and state resolution read for a stored event. */
export function authFormOf(record: EventRecord, roomVersion: string): PDU {
  const base = record.redactedBy ? (redactEvent(record.event, roomVersion) as PDU) : record.event;
  return { ...base, event_id: record.eventId };
}

export function stateEntryOf(record: EventRecord, roomVersion: string): StateEntry {
  return { record, pdu: authFormOf(record, roomVersion) };
}

export class RoomState {
  readonly rules: RoomVersionRules;
  /** Current state by `stateKeyOf(type, state_key)`. */
  readonly state = new Map<string, StateEntry>();
  /** The state group that holds exactly `state`, when one is known. */
  stateGroup: number | undefined;
  /** Forward extremities and their depths. */
  readonly extremities = new Map<string, number>();

  constructor(
    readonly roomId: string,
    readonly version: string,
    readonly creator: string,
  ) {
    this.rules = roomVersionRules(version);
  }

  /** Reads a room from storage; undefined if the server does not know it. */
  static async load(txn: ReadTxn, roomId: string): Promise<RoomState | undefined> {
    const room = await txn.rooms.get(roomId);
    if (!room) return undefined;
    const loaded = new RoomState(roomId, room.roomVersion, room.creator);
    const [ids, extremities] = await Promise.all([txn.currentState.load(roomId), txn.dag.extremities(roomId)]);
    const records = await txn.events.getMany([...ids.values(), ...extremities]);
    for (const [key, eventId] of ids) {
      const record = records.get(eventId);
      if (record) loaded.state.set(key, stateEntryOf(record, room.roomVersion));
    }
    for (const eventId of extremities) loaded.extremities.set(eventId, records.get(eventId)?.depth ?? 0);
    // With one extremity the current state is the state after it; with a fork
    // it is a resolution of several, whose group the next write creates.
    const tip = extremities.length === 1 ? records.get(extremities[0]!) : undefined;
    if (tip) loaded.stateGroup = (await txn.eventState.of(tip))?.after;
    return loaded;
  }

  get(type: string, stateKey: string): StateEntry | undefined {
    return this.state.get(stateKeyOf(type, stateKey));
  }

  /** A `(type, state_key) -> PDU` lookup over current state, for pickAuthEvents. */
  readonly lookup = (type: string, stateKey: string): PDU | undefined => this.get(type, stateKey)?.pdu;

  get createEvent(): PDU {
    const create = this.get('m.room.create', '');
    if (!create) throw new Error(`room ${this.roomId} has no create event in its current state`);
    return create.pdu;
  }

  get powerLevels(): PDU | undefined {
    return this.get('m.room.power_levels', '')?.pdu;
  }

  /** The user's membership in current state, if any member event exists. */
  membershipOf(userId: string): Membership | undefined {
    const membership = this.get('m.room.member', userId)?.pdu.content.membership;
    return typeof membership === 'string' ? (membership as Membership) : undefined;
  }

  /** Users with the given membership. */
  members(membership: Membership): string[] {
    const out: string[] = [];
    for (const [key, entry] of this.state) {
      if (entry.pdu.type !== 'm.room.member' || entry.pdu.content.membership !== membership) continue;
      out.push(splitStateKey(key)[1]);
    }
    return out;
  }

  /** The current state as IDs. */
  stateIds(): StateMap {
    const ids: StateMap = new Map();
    for (const [key, entry] of this.state) ids.set(key, entry.record.eventId);
    return ids;
  }

  /** Largest depth among the extremities (0 for an empty room). */
  get maxDepth(): number {
    let max = 0;
    for (const depth of this.extremities.values()) if (depth > max) max = depth;
    return max;
  }
}

/**
 * The room engine's public face: the one path by which events enter a room,
 * whether a local user sends them or a peer does. Building an event
 * (prev_events from the forward extremities, auth_events from current state,
 * depth), signing it, checking it against the auth rules, computing the state
 * after it and persisting all of it happen in the engine; API modules only
 * call these methods.
 *
 * Every write to a room's events, state, extremities or memberships must go
 * through the engine: it keeps each room's current state in memory and would
 * not see changes made behind its back.
 */
import type { HistoryOutcome, StateFetcher } from './history.js';
import type { PDU, StateMap } from '../../core/index.js';
import type { EventRecord, Membership } from '../../storage/types.js';
import type { StateEntry } from './room-state.js';
import type { PduOutcome } from './receive.js';
import type { JoinedRoomImport } from './join-import.js';

export type { StateEntry } from './room-state.js';

/** What a local user asks to send; the engine fills in everything else. */
export interface EventDraft {
  type: string;
  content: Record<string, unknown>;
  /** Present for state events. */
  stateKey?: string;
  /** For m.room.redaction: the event being redacted. */
  redacts?: string;
}

/** A client transaction: replaying the same (user, device, txnId) returns the first result. */
export interface ClientTxn {
  deviceId: string;
  txnId: string;
}

/** The body of POST /createRoom, already checked for types. */
export interface CreateRoomRequest {
  visibility?: 'public' | 'private';
  room_alias_name?: string;
  name?: string;
  topic?: string;
  invite?: string[];
  invite_3pid?: unknown[];
  room_version?: string;
  creation_content?: Record<string, unknown>;
  initial_state?: Array<{ type: string; state_key?: string; content: Record<string, unknown> }>;
  preset?: 'private_chat' | 'public_chat' | 'trusted_private_chat';
  is_direct?: boolean;
  power_level_content_override?: Record<string, unknown>;
}

/** Membership changes a user can ask for; kick and unban are `leave` events by someone else. */
export type MembershipAction = 'invite' | 'join' | 'leave' | 'kick' | 'ban' | 'unban' | 'knock';

export interface MembershipOptions {
  /** `reason` of the member event. */
  reason?: string;
  /** Content to start from (PUT state m.room.member, join bodies); `membership` is set by the engine. */
  content?: Record<string, unknown>;
  /** Sets `is_direct` on an invite. */
  isDirect?: boolean;
  txn?: ClientTxn;
}

/** What happened to an event received from a peer. */
export interface ReceiveResult {
  eventId: string;
  /**
   * accepted: part of the room now. rejected: failed auth against its auth
   * events or the state before it (kept as a rejected outlier so it is not
   * fetched again). softFailed: allowed by its own state but not by current
   * state (kept, not shown, not built on). duplicate: already stored.
   */
  outcome: 'accepted' | 'rejected' | 'softFailed' | 'duplicate';
  reason?: string;
}

/** A profile as it appears in member events; null or absent removes the field. */
export interface MemberProfile {
  displayname?: string | null;
  avatar_url?: string | null;
}

/**
 * The meta key under which "this user forgot this room" is kept (POST
 * /rooms/{roomId}/forget). /sync leaves such rooms out of its leave section;
 * the engine clears the key when the user is invited or joins again.
 */
export function forgottenRoomKey(userId: string, roomId: string): string {
  return `forgotten_room:${JSON.stringify([userId, roomId])}`;
}

export interface RoomEngine {
  /**
   * Creates a room with the events createRoom implies, in one write; returns
   * its ID (and alias, if one was created). Throws MatrixError on bad requests
   * (M_UNSUPPORTED_ROOM_VERSION, M_ROOM_IN_USE, M_INVALID_ROOM_STATE, ...).
   */
  createRoom(creator: string, request: CreateRoomRequest): Promise<{ roomId: string; alias?: string }>;
  /**
   * Builds, signs, authorises and persists one event from a local user. Throws
   * MatrixError M_FORBIDDEN (with the auth rule's reason) when the auth rules
   * deny it or the sender is not in the room (Synapse's answer for unknown
   * rooms too), M_TOO_LARGE over 65,536 bytes, M_BAD_JSON for content that is
   * not canonical JSON. A replayed `txn` returns the event the first call made.
   */
  sendEvent(roomId: string, sender: string, draft: EventDraft, options?: { txn?: ClientTxn }): Promise<EventRecord>;
  /**
   * Changes `target`'s membership as `sender` (join/leave: sender = target).
   * Adds the target's profile to joins and invites, invite_room_state to
   * invites; a repeat of the current membership with the same content returns
   * the existing event. Unknown room: 404 for join and leave, 403 otherwise.
   */
  updateMembership(roomId: string, sender: string, target: string, action: MembershipAction, options?: MembershipOptions): Promise<EventRecord>;
  /** Marks a room the user has left as forgotten. 400 if the user is still joined or invited. */
  forgetRoom(userId: string, roomId: string): Promise<void>;
  /** Sends a new join event with the profile into every room the user is joined to (profile changes). */
  updateProfileInRooms(userId: string, profile: MemberProfile): Promise<void>;
  /**
   * Runs PDUs from peers (any order, any peer) through the receive checks
   * (receive.ts): format, event ID and duplicates, signatures, content hash,
   * auth against auth events, against the state before, soft fail; persists
   * each like a local event. Missing prev or auth events come back as
   * `missingPrevs` with the IDs; nothing is fetched here.
   */
  receivePdus(pdus: readonly unknown[], origin: string): Promise<PduOutcome[]>;
  /**
   * receivePdus for one event, for callers that want failure as an exception:
   * throws CoreError for invalid events, unknown rooms and missing parents.
   */
  receiveEvent(pdu: PDU, origin: string): Promise<ReceiveResult>;
  /** make_join / make_leave / make_knock: the unsigned member event a remote user may sign; 404 if no local user is joined, 403 if not allowed. */
  membershipTemplate(roomId: string, userId: string, membership: 'join' | 'leave' | 'knock'): Promise<{ roomVersion: string; event: PDU }>;
  /**
   * Older events from a peer's backfill answer, checked like received events and stored behind the
   * timeline (rooms/history.ts): no extremity, current state or /sync change. Undefined for an unknown room.
   */
  importHistory(roomId: string, pdus: readonly unknown[], origin: string, fetchState: StateFetcher): Promise<HistoryOutcome | undefined>;
  /** Our join to a remote room with the resident's state and auth chain, checked and written in one write; returns the join's ID. */
  importJoin(input: JoinedRoomImport): Promise<string>;
  /** A remote member event about a local user (invite, its rejection): through the receive checks if the room is known, else kept as an outlier with its membership. */
  storeOutlierMembership(roomId: string, roomVersion: string, eventId: string, event: PDU, origin: string): Promise<void>;
  /** Rooms a local user is joined to: forward extremities (and the deepest one's depth) and the other servers with joined members. */
  sharedRooms(): Promise<Array<{ roomId: string; extremities: string[]; servers: string[]; maxDepth: number }>>;
  /** Steps 1–2 of the receive checks on PDUs of a room, nothing stored: each one's event ID, undefined if malformed or of an unknown room. */
  identifyPdus(roomId: string, pdus: readonly unknown[]): Promise<(string | undefined)[]>;
  /** Which of these events are stored here (rejected and outliers included). */
  storedEvents(eventIds: readonly string[]): Promise<Set<string>>;

  /** The room's version, or undefined if this server does not know the room. */
  roomVersion(roomId: string): Promise<string | undefined>;
  /** The event at (type, stateKey) in the room's current state, as stored. */
  currentStateEvent(roomId: string, type: string, stateKey: string): Promise<PDU | undefined>;
  /** The room's current state (read-only view of the engine's cache), or undefined for unknown rooms. */
  currentState(roomId: string): Promise<ReadonlyMap<string, StateEntry> | undefined>;
  /** The user's membership in current state, if any. */
  membership(roomId: string, userId: string): Promise<Membership | undefined>;
  /** The room state after an event (by stateKeyOf keys), or undefined if unknown. */
  stateAfter(eventId: string): Promise<StateMap | undefined>;
  /** The room state before an event, or undefined if unknown. */
  stateBefore(eventId: string): Promise<StateMap | undefined>;
  /**
   * The client transaction ID an event was sent with, for the device that sent
   * it (unsigned.transaction_id in /sync). Remembered in memory for recent
   * events only: after a restart, earlier sends have none.
   */
  transactionIdFor(eventId: string, userId: string, deviceId: string): string | undefined;
}

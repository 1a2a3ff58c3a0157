/**
 * Who may see what in a room: the one place that decides it, as Synapse's
 * synapse/visibility.py is. Every read path asks here — /sync, /messages,
 * /context, /event, /state, /members, /joined_members, /aliases — and the
 * federation reads to come (backfill, get_missing_events, state_ids) will ask
 * `serverMayRead` and `isEventVisibleToServer`. Before this module the rules
 * were written five times and the copies disagreed (issue 6: a user who had
 * knocked and left, had been banned before joining, or had rejected an invite
 * could read /state and /members).
 *
 * Three questions, in the order a read path asks them:
 *
 * 1. May this user read the room, and up to where? (`userMayRead`, and
 *    `checkUserMayRead` for routes, which answers 403)
 *    Members may. Former members — joined, then left or banned — may read up
 *    to their departure (the `horizon`), until they forget the room. Anyone
 *    may read a world_readable room. Everyone else gets 403 M_FORBIDDEN: a
 *    knock, an invite or a ban that never led to a join gives nothing, and a
 *    forgotten room is as if the user had never been there.
 * 2. Which state may they read? (`readableState`) The current state, or for a
 *    former member the state just after their departure. /sync's leave
 *    section gives one who never joined only their own member event
 *    (`stateWithoutGrant`).
 * 3. May they see this event? (`isEventVisible`, pure; `visibleEvents` over a
 *    reader, for whole batches) The spec's history visibility algorithm
 *    (m.room.history_visibility, "Server behaviour"), judged on the state
 *    before the event, with the spec's two "before or after" rules for the
 *    user's own member events and for history_visibility events, and Synapse's
 *    rule that one's own leave after an invite (a rejection) stays visible.
 *
 * The sync path reads here on every call, so `visibleEvents` keeps the
 * shortcuts that avoid loading state (see its comment); they give the same
 * answers as the full algorithm, only sooner.
 */
import { serverNameOf, stateKeyOf, type PDU, type StateMap } from '../../core/index.js';
import type { EventRecord, Membership, MembershipRecord } from '../../storage/types.js';
import { forbidden } from '../http/errors.js';
import { compareTopo, gapAfter } from '../sync/tokens.js';

// ---------------------------------------------------------------------------
// What the module reads

/**
 * The reads this module needs, within one storage read transaction.
 * sync/room-reader.ts's RoomReader is the implementation; tests give an
 * in-memory one.
 */
export interface AccessReader {
  /** The user's current membership of the room (the memberships table). */
  membership(roomId: string, userId: string): Promise<MembershipRecord | undefined>;
  /** Whether the user has forgotten the room (POST /rooms/{roomId}/forget) and not come back since. */
  hasForgotten(userId: string, roomId: string): Promise<boolean>;
  /** The event ID at (type, stateKey) in current state. */
  currentStateId(roomId: string, type: string, stateKey: string): Promise<string | undefined>;
  /** The room's whole current state. */
  currentStateIds(roomId: string): Promise<StateMap>;
  /** User IDs currently joined to the room. */
  joinedUserIds(roomId: string): Promise<string[]>;
  getEvent(eventId: string): Promise<EventRecord | undefined>;
  /** The state before / after an event; undefined if the server never recorded it. */
  stateBefore(record: EventRecord): Promise<StateMap | undefined>;
  stateAfter(record: EventRecord): Promise<StateMap | undefined>;
  /** A string field of a state event's content; both fields survive redaction. */
  stateValue(eventId: string | undefined, field: 'membership' | 'history_visibility'): Promise<string | undefined>;
  /** The membership a member event replaced, if it replaced one. */
  previousMembership(record: EventRecord): Promise<string | undefined>;
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

// ---------------------------------------------------------------------------
// The history visibility algorithm (question 3), pure

export interface EventVisibilityInput {
  userId: string;
  event: Pick<PDU, 'type' | 'state_key' | 'content'>;
  /** history_visibility in the state before the event (absent: "shared"). */
  historyVisibility: string | undefined;
  /** The user's membership in the state before the event. */
  membershipBefore: string | undefined;
  /**
   * "The user joined the room at any point after the event" (the shared
   * rule). Callers answer it as: joined now, or a former member and the
   * event came before their departure.
   */
  joinedLater: boolean;
}

/** The spec's four rules for one (history_visibility, membership) pair. */
function allowedBy(historyVisibility: string | undefined, membership: string | undefined, joinedLater: boolean): boolean {
  const visibility = historyVisibility ?? 'shared';
  if (visibility === 'world_readable') return true;
  if (membership === 'join') return true;
  if (visibility === 'shared' && joinedLater) return true;
  if (visibility === 'invited' && membership === 'invite') return true;
  // "joined", or a value the spec does not define: nothing more (least disclosure).
  return false;
}

const stringOr = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** Whether a user may see one event (spec m.room.history_visibility, "Server behaviour"). */
export function isEventVisible(input: EventVisibilityInput): boolean {
  const { event, userId, historyVisibility, membershipBefore, joinedLater } = input;
  if (allowedBy(historyVisibility, membershipBefore, joinedLater)) return true;
  // The spec: one's own member event is visible if the membership before or after it allows it
  // (so a user sees their own join, and the event that ended a membership).
  if (event.type === 'm.room.member' && event.state_key === userId) {
    const after = stringOr(event.content?.membership);
    // Synapse: one's own leave after an invite (a rejected invite) stays visible, or the room never leaves the client.
    if (after === 'leave' && membershipBefore === 'invite') return true;
    return allowedBy(historyVisibility, after, joinedLater);
  }
  // The spec: a history_visibility event is visible if the setting before or after it allows it.
  if (event.type === 'm.room.history_visibility' && event.state_key === '') {
    return allowedBy(stringOr(event.content?.history_visibility), membershipBefore, joinedLater);
  }
  return false;
}

/**
 * Whether a server may see one event (the seam for federation reads; Synapse's
 * filter_events_for_server): shared and world_readable history is open to any
 * server in the room; otherwise one of the server's users must have been
 * joined (or invited, under "invited") in the state before the event.
 */
export function isEventVisibleToServer(input: { historyVisibility: string | undefined; memberships: readonly (string | undefined)[] }): boolean {
  const visibility = input.historyVisibility ?? 'shared';
  if (visibility === 'world_readable' || visibility === 'shared') return true;
  if (input.memberships.includes('join')) return true;
  return visibility === 'invited' && input.memberships.includes('invite');
}

// ---------------------------------------------------------------------------
// 1. The room gate (and the server seam)

/** What the gate grants: whose view to judge events by, and how far they may read. */
export interface ReadGrant {
  view: MembershipView;
  /**
   * A former member's leave or ban: they read the room up to and including it,
   * nothing after. Undefined for members and in world_readable rooms.
   */
  horizon?: EventRecord;
}

export interface GateOptions {
  /**
   * Whether former members read up to their departure. @default true.
   * /joined_members and /aliases say false: they describe the room now (as Synapse).
   */
  formerMembers?: boolean;
}

async function isWorldReadable(reader: AccessReader, roomId: string): Promise<boolean> {
  return (await reader.stateValue(await reader.currentStateId(roomId, 'm.room.history_visibility', ''), 'history_visibility')) === 'world_readable';
}

/**
 * May `userId` read `roomId` at all, and up to where: members and readers of
 * world_readable rooms without limit, former members up to their departure
 * (unless they forgot the room); undefined for everyone else, and for rooms
 * this server does not know (they look the same).
 */
export async function userMayRead(reader: AccessReader, roomId: string, userId: string, options: GateOptions = {}): Promise<ReadGrant | undefined> {
  const record = await reader.membership(roomId, userId);
  const memberEvent = record ? await reader.getEvent(record.eventId) : undefined;
  const view: MembershipView = { userId, membership: record?.membership, memberEvent };
  if (view.membership === 'join') return { view };
  const departed = view.membership === 'leave' || view.membership === 'ban';
  // A former member is one whose leave or ban ended a join: not a knock withdrawn, an invite
  // rejected, or a ban before ever joining. (Join, leave, invite, reject counts as never joined:
  // telling would need the whole membership history; the user loses read access they could regain by joining.)
  const former =
    (options.formerMembers ?? true) &&
    departed &&
    memberEvent !== undefined &&
    !(await reader.hasForgotten(userId, roomId)) &&
    (await reader.previousMembership(memberEvent)) === 'join';
  if (await isWorldReadable(reader, roomId)) {
    // Anyone may read it; a former member keeps the view that lets them see shared history from before they left.
    return { view: former ? view : { userId, membership: undefined, memberEvent: undefined } };
  }
  if (former) return { view, horizon: memberEvent };
  return undefined;
}

/** userMayRead for the read routes: the grant, or 403 M_FORBIDDEN (Synapse's words). */
export async function checkUserMayRead(reader: AccessReader, roomId: string, userId: string, options: GateOptions = {}): Promise<ReadGrant> {
  const grant = await userMayRead(reader, roomId, userId, options);
  if (!grant) throw forbidden(`User ${userId} not in room ${roomId}, and room previews are disabled`);
  return grant;
}

/** Whether an event lies within what the grant allows (at or before a former member's departure). */
export function withinHorizon(grant: ReadGrant, record: EventRecord): boolean {
  return grant.horizon === undefined || compareTopo(gapAfter(record), gapAfter(grant.horizon)) <= 0;
}

/**
 * Whether a server may read a room (the seam for federation reads: backfill,
 * get_missing_events, state_ids; Synapse's assert_host_in_room): one of its
 * users must be joined now. world_readable rooms are no exception: peeking
 * over federation is not in the stable spec (MSC2444), so least disclosure.
 * Not called yet, as federation is not built: its receiver must ask here,
 * then filter events with isEventVisibleToServer.
 */
export async function serverMayRead(reader: AccessReader, roomId: string, serverName: string): Promise<boolean> {
  return (await reader.joinedUserIds(roomId)).some((userId) => serverNameOf(userId) === serverName);
}

// ---------------------------------------------------------------------------
// 2. State

/** The state a granted user may read: current, or for a former member the state just after their departure. */
export async function readableState(reader: AccessReader, roomId: string, grant: ReadGrant): Promise<StateMap> {
  if (grant.horizon) return (await reader.stateAfter(grant.horizon)) ?? new Map();
  return reader.currentStateIds(roomId);
}

/**
 * What a user without a grant learns of a room's state when /sync tells them
 * their invite, knock or ban-before-joining has ended (the leave section):
 * their own member event, nothing else.
 */
export function stateWithoutGrant(userId: string, state: StateMap): StateMap {
  const own = stateKeyOf('m.room.member', userId);
  const id = state.get(own);
  return id === undefined ? new Map() : new Map([[own, id]]);
}

// ---------------------------------------------------------------------------
// 3. Events, over a reader (the algorithm above, with the sync path's shortcuts)

/** Drops the events the user may not see; keeps order. Rejected and soft-failed events are never shown. */
export async function visibleEvents(reader: AccessReader, roomId: string, view: MembershipView, records: readonly EventRecord[]): Promise<EventRecord[]> {
  return new VisibilityCheck(reader, roomId, view).filter(records);
}

/**
 * The algorithm for one user and room, with shortcuts that avoid loading
 * state (the sync path runs this for every room on every call):
 * - events at or after the user's current join are visible (they were joined);
 * - the user's own join is visible (the membership after it allows it);
 * - events after the room's current history_visibility event are judged by
 *   that setting alone when it is world_readable, or shared and the user
 *   joined later: their state before holds that setting.
 * Everything else is judged by the state before the event. Callers stop
 * ranges at a former member's horizon.
 */
class VisibilityCheck {
  private currentHv: { value: string; stream: number } | undefined;

  constructor(
    private readonly reader: AccessReader,
    private readonly roomId: string,
    private readonly view: MembershipView,
  ) {}

  async filter(records: readonly EventRecord[]): Promise<EventRecord[]> {
    const { view } = this;
    const joinStream = view.membership === 'join' ? view.memberEvent?.streamOrdering : undefined;
    const verdict = new Map<EventRecord, boolean>();
    const undecided: EventRecord[] = [];
    for (const record of records) {
      const { event } = record;
      if (record.rejected !== undefined || record.softFailed) verdict.set(record, false);
      else if (joinStream !== undefined && (record.streamOrdering ?? 0) >= joinStream) verdict.set(record, true);
      else if (event.type === 'm.room.member' && event.state_key === view.userId && event.content?.membership === 'join') verdict.set(record, true);
      else undecided.push(record);
    }
    if (undecided.length > 0) {
      const hv = await this.currentHistoryVisibility();
      const former = await this.isFormerMember();
      const slow: EventRecord[] = [];
      for (const record of undecided) {
        const afterHv = (record.streamOrdering ?? 0) > hv.stream;
        if (afterHv && (hv.value === 'world_readable' || (hv.value === 'shared' && this.joinedLater(record, former)))) verdict.set(record, true);
        else slow.push(record);
      }
      const states = await Promise.all(slow.map((record) => this.reader.stateBefore(record)));
      for (let i = 0; i < slow.length; i++) verdict.set(slow[i]!, await this.judge(slow[i]!, states[i], former));
    }
    return records.filter((record) => verdict.get(record));
  }

  private async judge(record: EventRecord, state: StateMap | undefined, former: boolean): Promise<boolean> {
    // Without the state before it the server cannot tell: hide it.
    if (!state) return false;
    const [historyVisibility, membershipBefore] = await Promise.all([
      this.reader.stateValue(state.get(HV_KEY), 'history_visibility'),
      this.reader.stateValue(state.get(stateKeyOf('m.room.member', this.view.userId)), 'membership'),
    ]);
    return isEventVisible({ userId: this.view.userId, event: record.event, historyVisibility, membershipBefore, joinedLater: this.joinedLater(record, former) });
  }

  /**
   * "Joined at any point after the event": joined now, or a former member
   * (their leave or ban ended a join) and the event came no later than their
   * departure.
   */
  private joinedLater(record: EventRecord, former: boolean): boolean {
    if (this.view.membership === 'join') return true;
    const departure = this.view.memberEvent?.streamOrdering;
    return former && departure !== undefined && record.streamOrdering !== undefined && record.streamOrdering <= departure;
  }

  private async isFormerMember(): Promise<boolean> {
    const { membership, memberEvent } = this.view;
    if ((membership !== 'leave' && membership !== 'ban') || !memberEvent) return false;
    return (await this.reader.previousMembership(memberEvent)) === 'join';
  }

  private async currentHistoryVisibility(): Promise<{ value: string; stream: number }> {
    if (!this.currentHv) {
      const eventId = await this.reader.currentStateId(this.roomId, 'm.room.history_visibility', '');
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
}

/**
 * GET /sync (spec "Syncing"): what changed for one user's device since a
 * sync token, computed in one storage read transaction, and the long-poll
 * that waits for the next change.
 *
 * A response covers the stream window (since, next] of the one storage
 * stream, plus typing changes after the token's typing serial. Joined rooms
 * carry their timeline (the newest `limit` events of the window, `limited`
 * when older ones were left out, `prev_batch` a pagination token for the gap
 * before the first), the state needed to reach the state after the timeline
 * (full state on initial sync, for newly joined rooms and with full_state;
 * the changes across the gap when limited; only the senders' member events
 * with lazy loading), ephemeral events (m.receipt, m.typing), room account
 * data, the summary and unread counts. Invites carry stripped state; rooms
 * the user left carry the timeline up to the leave. Global account data,
 * to-device messages (deleted once a later token acknowledges them),
 * device-list changes and key counts complete it.
 *
 * Cost: an incremental sync reads only rooms and streams the notifier says
 * changed, and is first tried with no storage read at all, over what
 * SyncMemory holds (a woken long-poll usually needs only the new events); an
 * initial sync reads each room's newest events (never a whole timeline) and
 * its state.
 */
import { splitStateKey, stateKeyOf, type StateMap } from '../../core/index.js';
import type { AccountDataRecord, EventRecord, MembershipRecord, ReadTxn, ReceiptRecord, ToDeviceRecord } from '../../storage/types.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../http/errors.js';
import type { EventFilter, SyncFilter } from './filters.js';
import { LruMap } from './lru.js';
import { CacheMiss, SyncMemory, type Learner } from './memory.js';
import { SyncNotifier } from './notifier.js';
import { stateWithoutGrant, userMayRead, visibleEvents, type MembershipView } from '../access/room-access.js';
import { ReadCaches, RoomReader, strippedState, type FormatOptions } from './room-reader.js';
import { formatSyncToken, formatTopoToken, gapAfter, gapBefore, type SyncToken } from './tokens.js';
import type { TypingTracker } from './typing.js';
import { UnreadCounter } from './unread.js';
import { deviceListDelta, type DeviceListDelta } from '../keys/device-lists.js';
import { skipCorruptRows } from '../corrupt-rows.js';
import { backwardExtremities } from '../rooms/history.js';
import { getOwn, ownSlot, setOwn } from '../own-keys.js';

export interface SyncParams {
  userId: string;
  deviceId: string;
  since?: SyncToken;
  /** Long-poll timeout, already capped by the caller. */
  timeoutMs: number;
  filter: SyncFilter;
  fullState: boolean;
  /** Aborted when the client gives up on the request (disconnect, SDK stopped). */
  signal?: AbortSignal;
}

type Json = Record<string, unknown>;

/** To-device messages per response; a fuller inbox moves next_batch only up to the last one sent. */
const TO_DEVICE_LIMIT = 100;
/** Events examined at most while filling one room's timeline through a sparse filter. */
const TIMELINE_SCAN_LIMIT = 2000;
/** Heroes in a room summary (spec: up to 5). */
const MAX_HEROES = 5;
/** Event types invites show of the room, when the invite carries no stripped state. */
const INVITE_STATE_TYPES = [
  'm.room.create',
  'm.room.join_rules',
  'm.room.name',
  'm.room.avatar',
  'm.room.canonical_alias',
  'm.room.encryption',
  'm.room.topic',
];

/** What one computation produced, with what the long-poll needs to decide. */
interface SyncResult {
  body: Json;
  hasContent: boolean;
  /** Joined and invited rooms, for waking. */
  rooms: Set<string>;
  typingSerial: number;
  /** Member events this response sends, per room (lazy-loading memory). */
  sentMembers: Map<string, Map<string, string>>;
  resetMembers: boolean;
}

/** One computation's shared inputs. */
interface Pass {
  reader: RoomReader;
  params: SyncParams;
  since: number | undefined;
  /** Upper end of the window (inclusive). */
  upTo: number;
  /** Whether upTo is the latest position (current state is the state at upTo). */
  atCurrent: boolean;
  canSkip: boolean;
  typingSerial: number;
  /** Send m.typing for every room: the token's serial is from before a restart. */
  typingReset: boolean;
  sentMembers: Map<string, Map<string, string>>;
  knownMembers: Map<string, Map<string, string>> | undefined;
}

export interface SyncServiceOptions {
  /** The client transaction ID a device sent an event with (the room engine remembers recent ones). */
  transactionIdFor?(eventId: string, userId: string, deviceId: string): string | undefined;
  /** The homeserver's caches of immutable data (shared with the room engine). @default its own */
  caches?: ReadCaches;
}

export class SyncService {
  readonly caches: ReadCaches;
  readonly notifier: SyncNotifier;
  /** Recent events, memberships and key counts: what a woken long-poll usually needs, without a read. */
  private readonly memory: SyncMemory;
  private readonly unread: UnreadCounter;
  /** user/device -> room -> member user -> member event ID already sent (lazy loading). */
  private readonly lazyMembers = new LruMap<string, Map<string, Map<string, string>>>(512);
  /** user/device -> stream position up to which its to-device inbox has been emptied. */
  private readonly toDeviceCleared = new Map<string, number>();

  constructor(
    private readonly ctx: HomeserverContext,
    private readonly typing: TypingTracker,
    private readonly options: SyncServiceOptions = {},
  ) {
    this.caches = options.caches ?? new ReadCaches();
    this.notifier = new SyncNotifier(ctx.storage, typing);
    this.memory = new SyncMemory(ctx.storage, this.notifier);
    this.unread = new UnreadCounter(this.notifier);
  }

  close(): void {
    this.notifier.close();
    this.memory.close();
  }

  /** Runs a read of rooms for /messages and /context (one read transaction). */
  readRooms<T>(fn: (txn: ReadTxn) => Promise<T>): Promise<T> {
    return this.ctx.storage.read(fn);
  }

  /** Answers one /sync, waiting up to `timeoutMs` for something new on an incremental sync. */
  async sync(params: SyncParams): Promise<Json> {
    await this.notifier.ready;
    if (params.since) await this.clearDeliveredToDevice(params.userId, params.deviceId, params.since.stream);
    const started = performance.now();
    for (;;) {
      const seq = this.notifier.seq;
      const result = await this.compute(params);
      const remaining = params.timeoutMs - (performance.now() - started);
      if (!params.since || params.fullState || result.hasContent || remaining <= 0) return this.deliver(params, result);
      const woken = await this.notifier.wait(
        { userId: params.userId, deviceId: params.deviceId, rooms: result.rooms, seq, typingSerial: result.typingSerial },
        remaining,
        params.signal,
      );
      // Nobody will read an aborted response: record nothing as sent (e.g. lazy-loaded members).
      if (params.signal?.aborted) return result.body;
      if (!woken) return this.deliver(params, result);
    }
  }

  private deliver(params: SyncParams, result: SyncResult): Json {
    if (params.filter.lazyLoadMembers) {
      const key = `${params.userId}\n${params.deviceId}`;
      let known = result.resetMembers ? undefined : this.lazyMembers.get(key);
      if (!known) {
        known = new Map();
        this.lazyMembers.set(key, known);
      }
      for (const [roomId, members] of result.sentMembers) {
        let room = known.get(roomId);
        if (!room) known.set(roomId, (room = new Map()));
        for (const [userId, eventId] of members) room.set(userId, eventId);
      }
    }
    return result.body;
  }

  /** Deletes to-device messages the token acknowledges (spec: delivered once a later sync uses next_batch). */
  private async clearDeliveredToDevice(userId: string, deviceId: string, since: number): Promise<void> {
    const key = `${userId}\n${deviceId}`;
    const cleared = this.toDeviceCleared.get(key);
    if (cleared !== undefined && (cleared >= since || this.notifier.lastToDeviceOf(userId, deviceId) <= cleared)) return;
    await this.ctx.storage.write((txn) => txn.toDevice.deleteUpTo(userId, deviceId, since));
    this.toDeviceCleared.set(key, Math.max(cleared ?? 0, since));
  }

  /**
   * One response for `params`. An incremental sync is first computed from
   * memory (the same code over SyncMemory's ReadTxn); if that needs anything
   * memory does not hold, it is computed again in a storage read transaction.
   * A storage read may see a write that committed after the read's skip
   * decisions were taken from the notifier (IndexedDB runs a read created
   * while a write is open after that write, and its commit notice comes later
   * still): skipping then would step the token over, say, a to-device message
   * that the next sync deletes unseen. Such a read is computed again without
   * skipping anything.
   */
  private async compute(params: SyncParams): Promise<SyncResult> {
    const typingSerial = this.typing.serial;
    const now = this.ctx.clock.now();
    const fromMemory = params.since && !params.fullState ? this.memory.readTxn(params.since.stream) : undefined;
    if (fromMemory) {
      try {
        return await this.computeIn(fromMemory, params, typingSerial, now);
      } catch (error) {
        if (!(error instanceof CacheMiss) && !(error instanceof UnseenCommits)) throw error;
      }
    }
    try {
      const learner = this.memory.learner();
      return await this.ctx.storage.read((txn) => this.computeIn(txn, params, typingSerial, now, learner));
    } catch (error) {
      if (!(error instanceof UnseenCommits)) throw error;
    }
    const learner = this.memory.learner();
    return this.ctx.storage.read((txn) => this.computeIn(txn, params, typingSerial, now, learner, { skip: false }));
  }

  private async computeIn(txn: ReadTxn, params: SyncParams, typingSerial: number, now: number, learner?: Learner, options: { skip?: boolean } = {}): Promise<SyncResult> {
    const reader = new RoomReader(txn, this.caches, now);
    const { userId, deviceId, filter } = params;
    const since = params.since?.stream;
    const canSkip = options.skip !== false && since !== undefined && this.notifier.knows(since);
    // Every skip below trusts the notifier for (since, seenUpTo]; the read must not reach past it.
    const seenUpTo = this.notifier.position;
    // Everything that does not depend on another read is asked for at once (one round trip in IndexedDB).
    // Nothing in this transaction lies beyond `current`, so these windows need no upper end.
    const [current, memberships, toDeviceAll, accountDataAll, oneTimeKeyCounts, fallbackTypes] = await Promise.all([
      txn.stream.current(),
      txn.memberships.forUser(userId),
      !canSkip || this.notifier.toDeviceAfter(userId, deviceId, since!)
        ? txn.toDevice.list(userId, deviceId, { from: since, limit: TO_DEVICE_LIMIT }, skipCorruptRows(this.ctx.log, `the to-device inbox of ${userId} ${deviceId}`))
        : Promise.resolve([] as ToDeviceRecord[]),
      !canSkip || this.notifier.accountDataAfter(userId, since!)
        ? txn.accountData.changes(userId, { dir: 'f', from: since }, skipCorruptRows(this.ctx.log, `account data of ${userId}`))
        : Promise.resolve([] as AccountDataRecord[]),
      txn.oneTimeKeys.counts(userId, deviceId),
      txn.fallbackKeys.unusedAlgorithms(userId, deviceId),
    ]);
    if (since !== undefined && since > current) throw new MatrixError(400, 'M_INVALID_PARAM', 'Unknown sync token: it is from the future');
    if (canSkip && (seenUpTo === undefined || current > seenUpTo)) throw new UnseenCommits();
    learner?.memberships(userId, memberships);
    learner?.keys(userId, deviceId, oneTimeKeyCounts, fallbackTypes);

    // A full page of to-device messages pulls the window's end back to its last message.
    const toDevice = toDeviceAll;
    const upTo = toDevice.length === TO_DEVICE_LIMIT ? toDevice[toDevice.length - 1].streamOrdering : current;
    const accountData = accountDataAll.filter((record) => record.streamOrdering <= upTo);

    const resetMembers = since === undefined || params.fullState;
    const pass: Pass = {
      reader,
      params,
      since,
      upTo,
      atCurrent: upTo === current,
      canSkip,
      typingSerial,
      typingReset: params.since !== undefined && params.since.typing > typingSerial,
      sentMembers: new Map(),
      knownMembers: resetMembers ? undefined : this.lazyMembers.get(`${userId}\n${deviceId}`),
    };

    const roomAccountData = new Map<string, AccountDataRecord[]>();
    const globalAccountData: Json[] = [];
    for (const record of accountData) {
      if (record.roomId === '') {
        const event = { type: record.type, content: record.content };
        if (filter.accountData.matches(event)) globalAccountData.push(event);
      } else {
        const list = roomAccountData.get(record.roomId) ?? [];
        list.push(record);
        roomAccountData.set(record.roomId, list);
      }
    }

    // The user's member events (cached: they never change in what is read from them).
    const memberEvents = await reader.getMemberEvents(memberships.map((m) => m.eventId));

    const join: Json = {};
    const invite: Json = {};
    const leave: Json = {};
    const wakeRooms = new Set<string>();
    const deviceListHints: DeviceListHints = { joinedRooms: [], newlyJoinedRooms: [], leftRooms: [], memberEvents: [] };

    await Promise.all(
      memberships.map(async (m) => {
        if (m.membership === 'join' || m.membership === 'invite') wakeRooms.add(m.roomId);
        if (m.membership === 'join') deviceListHints.joinedRooms.push(m.roomId);
        if (!filter.allowsRoom(m.roomId)) return;
        const event = memberEvents.get(m.eventId);
        const eventStream = event?.streamOrdering ?? 0;
        if (event && eventStream > upTo) {
          // The window ends early (TO_DEVICE_LIMIT) and the membership changed after its end: that change is
          // the next sync's news. A user joined at the window's end still gets the room's news up to it.
          if (since === undefined || (await reader.previousMembership(event)) !== 'join') return;
          const view: MembershipView = { userId, membership: 'join', memberEvent: undefined };
          const room = await this.joinedRoom(pass, m, view, params.fullState, false, roomAccountData, deviceListHints);
          if (room) setOwn(join, m.roomId, room);
          return;
        }
        // An outlier member event (a peer's invite) has no stream position: go by when the notifier saw it.
        const changed =
          since === undefined ||
          (event !== undefined &&
            (event.streamOrdering !== undefined
              ? eventStream > since
              : !this.notifier.knows(since) || this.notifier.membershipChangedAfter(userId, m.roomId, since)));
        const view: MembershipView = { userId, membership: m.membership, memberEvent: event };
        if (m.membership === 'join') {
          let newly = false;
          if (since !== undefined && changed && event) newly = (await reader.previousMembership(event)) !== 'join';
          if (newly) deviceListHints.newlyJoinedRooms.push(m.roomId);
          const room = await this.joinedRoom(pass, m, view, since === undefined || params.fullState || newly, newly, roomAccountData, deviceListHints);
          if (room) setOwn(join, m.roomId, room);
        } else if (m.membership === 'invite') {
          if (changed && event) setOwn(invite, m.roomId, await this.invitedRoom(pass, event));
        } else if (m.membership === 'leave' || m.membership === 'ban') {
          if (!event) return;
          // A forgotten room is gone from the user's view (POST /forget).
          if ((since === undefined || changed) && (await reader.hasForgotten(userId, m.roomId))) return;
          if (since === undefined) {
            if (filter.includeLeave) setOwn(leave, m.roomId, await this.leftRoom(pass, view, event, roomAccountData));
          } else if (changed) {
            const previous = await reader.previousMembership(event);
            if (previous !== 'join' && previous !== 'invite' && previous !== 'knock') return;
            if (previous === 'join') deviceListHints.leftRooms.push(m.roomId);
            setOwn(leave, m.roomId, await this.leftRoom(pass, view, event, roomAccountData));
          }
        }
      }),
    );

    const deviceLists = since === undefined ? { changed: [], left: [] } : await this.deviceLists(pass, deviceListHints);

    const body: Json = {
      next_batch: formatSyncToken({ stream: upTo, typing: typingSerial }),
      rooms: { join, invite, leave, knock: {} },
      account_data: { events: globalAccountData },
      presence: { events: [] },
      to_device: { events: toDevice.map((m) => ({ sender: m.sender, type: m.type, content: m.content })) },
      device_lists: deviceLists,
      device_one_time_keys_count: { signed_curve25519: 0, ...oneTimeKeyCounts },
      device_unused_fallback_key_types: fallbackTypes,
      'org.matrix.msc2732.device_unused_fallback_key_types': fallbackTypes,
    };
    const hasContent =
      Object.keys(join).length > 0 ||
      Object.keys(invite).length > 0 ||
      Object.keys(leave).length > 0 ||
      globalAccountData.length > 0 ||
      toDevice.length > 0 ||
      deviceLists.changed.length > 0 ||
      deviceLists.left.length > 0;
    return { body, hasContent, rooms: wakeRooms, typingSerial, sentMembers: pass.sentMembers, resetMembers };
  }

  private formatOptions(params: SyncParams): FormatOptions {
    const { transactionIdFor } = this.options;
    return {
      omitRoomId: true,
      eventFields: params.filter.eventFields,
      eventFormat: params.filter.eventFormat,
      transactionId: transactionIdFor ? (eventId) => transactionIdFor(eventId, params.userId, params.deviceId) : undefined,
    };
  }

  // -------------------------------------------------------------------------
  // Joined rooms

  private async joinedRoom(
    pass: Pass,
    membership: MembershipRecord,
    view: MembershipView,
    full: boolean,
    newly: boolean,
    roomAccountData: Map<string, AccountDataRecord[]>,
    hints: DeviceListHints,
  ): Promise<Json | undefined> {
    const { reader, params, since, upTo, canSkip } = pass;
    const { filter } = params;
    const { roomId } = membership;
    const txn = reader.txn;
    const typingChanged = pass.typingReset || (params.since !== undefined && this.typing.roomSerial(roomId) > params.since.typing);
    if (!full && canSkip) {
      const quiet =
        !this.notifier.roomEventsAfter(roomId, since!) &&
        !this.notifier.roomReceiptsAfter(roomId, since!) &&
        !typingChanged &&
        !roomAccountData.has(roomId);
      if (quiet) return undefined;
    }
    // Timeline: newly joined rooms start from the beginning; full_state keeps the window.
    const lower = full && (since === undefined || newly) ? undefined : since;
    const timelineMayChange = full || !canSkip || this.notifier.roomEventsAfter(roomId, since!);
    const timeline: RecentEvents = timelineMayChange
      ? await loadRecent(reader, roomId, view, lower, upTo, filter.timelineLimit, filter.timeline)
      : { events: [], limited: false, seen: { events: [], from: since! } };
    // A room joined since the last sync whose start this server does not hold (joined through another server:
    // what came before is fetched by backfill) has history before its timeline, so the timeline is limited.
    // The client knew the room as an invite and keeps that timeline; matrix-js-sdk takes prev_batch as the
    // place to page back from only when the timeline is limited, and a late joiner could not scroll back at all.
    if (newly && !timeline.limited && timeline.events.length > 0 && (await backwardExtremities(txn, roomId, 1)).length > 0) timeline.limited = true;
    const timelineIds = new Set(timeline.events.map((e) => e.eventId));

    // State.
    let state: StateMap = new Map();
    let start: StateMap | undefined;
    const startState = async () => (start ??= timeline.events.length > 0 ? ((await reader.stateBefore(timeline.events[0])) ?? new Map()) : await endState());
    let end: StateMap | undefined;
    const endState = async () => (end ??= pass.atCurrent ? await txn.currentState.load(roomId) : await reader.stateAtStream(roomId, upTo));
    if (full) {
      state = pickState(await startState(), await endState(), timelineIds, undefined);
    } else if (timeline.limited) {
      state = pickState(await startState(), await endState(), timelineIds, await reader.stateAtStream(roomId, since!));
    }

    let summary: Json | undefined;
    const membersTouched = full || timeline.events.some((e) => e.event.type === 'm.room.member') || [...state.keys()].some(isMemberKey);
    if (membersTouched) summary = await this.summary(pass, roomId, params.userId);

    if (filter.lazyLoadMembers) {
      const heroes = full && summary ? ((summary['m.heroes'] as string[] | undefined) ?? []) : [];
      state = await this.lazyLoad(pass, roomId, timeline.events, state, startState, full, heroes);
    }
    const stateRecords = await stateEvents(reader, state, filter.state, roomId);

    for (const record of [...timeline.events, ...stateRecords]) if (record.event.type === 'm.room.member') hints.memberEvents.push(record);

    // Ephemeral.
    const ephemeral: Json[] = [];
    if (filter.ephemeral.allowsRoom(roomId) && !filter.ephemeral.blocksAll) {
      const receiptsMayChange = full || !canSkip || this.notifier.roomReceiptsAfter(roomId, since!);
      if (receiptsMayChange) {
        const receipts = full ? await txn.receipts.forRoom(roomId) : await txn.receipts.changes(roomId, { dir: 'f', from: since, to: upTo });
        const content = receiptContent(receipts, params.userId);
        if (content) ephemeral.push({ type: 'm.receipt', content });
      }
      const typingUsers = this.typing.typingIn(roomId);
      if (full ? typingUsers.length > 0 : typingChanged) ephemeral.push({ type: 'm.typing', content: { user_ids: typingUsers } });
    }
    const ephemeralEvents = limitList(filter.ephemeral.filter(ephemeral as { type: string }[]), filter.ephemeral.limit);

    // Room account data: the window's changes, or all of it for a newly joined room.
    let accountRecords = roomAccountData.get(roomId) ?? [];
    if (newly) accountRecords = await txn.accountData.list(params.userId, roomId, skipCorruptRows(this.ctx.log, `account data of ${params.userId} in ${roomId}`));
    const accountEvents = filter.roomAccountData.filter(accountRecords.map((r) => ({ type: r.type, content: r.content, room_id: roomId })));

    if (!full && timeline.events.length === 0 && stateRecords.length === 0 && ephemeralEvents.length === 0 && accountEvents.length === 0) {
      return undefined;
    }

    const formatOptions = this.formatOptions(params);
    const room: Json = {
      timeline: {
        events: await reader.format(timeline.events, formatOptions),
        limited: timeline.limited,
        ...(await prevBatch(reader, roomId, timeline.events, full, upTo)),
      },
      state: { events: await reader.format(stateRecords, formatOptions) },
      ephemeral: { events: ephemeralEvents },
      account_data: { events: accountEvents.map(({ type, content }) => ({ type, content })) },
      unread_notifications: await this.unread.counts(reader, roomId, params.userId, upTo, timeline.seen),
    };
    if (summary) room.summary = summary;
    return room;
  }

  /** Lazy-loaded members: only the member events of timeline senders (and the user, and heroes, on full syncs). */
  private async lazyLoad(
    pass: Pass,
    roomId: string,
    timeline: EventRecord[],
    state: StateMap,
    startState: () => Promise<StateMap>,
    full: boolean,
    heroes: string[],
  ): Promise<StateMap> {
    const { params } = pass;
    const out: StateMap = new Map();
    const members = new Map<string, string>();
    for (const [key, eventId] of state) {
      if (isMemberKey(key)) members.set(splitStateKey(key)[1], eventId);
      else out.set(key, eventId);
    }
    const wanted = new Set<string>(timeline.map((e) => e.event.sender));
    if (full) {
      wanted.add(params.userId);
      for (const hero of heroes) wanted.add(hero);
    }
    const timelineIds = new Set(timeline.map((e) => e.eventId));
    const known = pass.knownMembers?.get(roomId);
    const sent = new Map<string, string>();
    for (const userId of wanted) {
      let eventId = members.get(userId);
      if (eventId === undefined) {
        // Unchanged across the gap (or no gap): the client may still lack it.
        if (!full && !params.filter.includeRedundantMembers && known?.has(userId)) continue;
        eventId = (await startState()).get(stateKeyOf('m.room.member', userId));
      }
      if (eventId === undefined || timelineIds.has(eventId)) continue;
      if (!full && !params.filter.includeRedundantMembers && known?.get(userId) === eventId) continue;
      out.set(stateKeyOf('m.room.member', userId), eventId);
      sent.set(userId, eventId);
    }
    for (const event of timeline) {
      if (event.event.type === 'm.room.member' && typeof event.event.state_key === 'string') sent.set(event.event.state_key, event.eventId);
    }
    if (sent.size > 0) pass.sentMembers.set(roomId, sent);
    return out;
  }

  /** m.heroes and member counts (spec "room summary"). */
  private async summary(pass: Pass, roomId: string, userId: string): Promise<Json> {
    const txn = pass.reader.txn;
    const [members, nameId, aliasId] = await Promise.all([
      txn.memberships.forRoom(roomId),
      txn.currentState.get(roomId, 'm.room.name', ''),
      txn.currentState.get(roomId, 'm.room.canonical_alias', ''),
    ]);
    let joined = 0;
    let invited = 0;
    const present: string[] = [];
    const gone: string[] = [];
    for (const m of members) {
      if (m.membership === 'join') joined++;
      if (m.membership === 'invite') invited++;
      if (m.userId === userId) continue;
      if (m.membership === 'join' || m.membership === 'invite') present.push(m.userId);
      else if (m.membership === 'leave' || m.membership === 'ban') gone.push(m.userId);
    }
    const summary: Json = { 'm.joined_member_count': joined, 'm.invited_member_count': invited };
    const named = await hasNonEmpty(pass.reader, nameId, 'name');
    const aliased = await hasNonEmpty(pass.reader, aliasId, 'alias');
    if (!named && !aliased) summary['m.heroes'] = (present.length > 0 ? present : gone).sort().slice(0, MAX_HEROES);
    return summary;
  }

  // -------------------------------------------------------------------------
  // Invites and departures

  private async invitedRoom(pass: Pass, inviteEvent: EventRecord): Promise<Json> {
    const { reader } = pass;
    let stripped = inviteEvent.event.unsigned?.invite_room_state;
    if (!Array.isArray(stripped)) {
      // A local invite the engine did not annotate: show the room's current state.
      const ids = await Promise.all(INVITE_STATE_TYPES.map((type) => reader.txn.currentState.get(inviteEvent.roomId, type, '')));
      const inviter = await reader.txn.currentState.get(inviteEvent.roomId, 'm.room.member', inviteEvent.event.sender);
      const records = await reader.getEvents([...ids, inviter].filter((id): id is string => id !== undefined));
      stripped = [...records.values()].map(strippedState);
    }
    const [invite] = await reader.format([inviteEvent], { omitRoomId: true });
    const unsigned = { ...((invite.unsigned as Json | undefined) ?? {}) };
    delete unsigned.invite_room_state;
    invite.unsigned = unsigned;
    return { invite_state: { events: [...(stripped as unknown[]), invite] } };
  }

  private async leftRoom(pass: Pass, view: MembershipView, leaveEvent: EventRecord, roomAccountData: Map<string, AccountDataRecord[]>): Promise<Json> {
    const { reader, params, since } = pass;
    const { filter } = params;
    const roomId = leaveEvent.roomId;
    const leaveAt = leaveEvent.streamOrdering ?? 0;
    const timeline = await loadRecent(reader, roomId, view, since, leaveAt, filter.timelineLimit, filter.timeline);
    const timelineIds = new Set(timeline.events.map((e) => e.eventId));
    const end = (await reader.stateAfter(leaveEvent)) ?? new Map();
    let state: StateMap = new Map();
    if (since === undefined || timeline.limited) {
      const start = timeline.events.length > 0 ? ((await reader.stateBefore(timeline.events[0])) ?? end) : end;
      state = pickState(start, end, timelineIds, since === undefined ? undefined : await reader.stateAtStream(roomId, since));
      // One who never joined (an invite rejected, a knock withdrawn or refused, a ban before joining) learns only their own membership.
      if (!(await userMayRead(reader, roomId, view.userId))) state = stateWithoutGrant(view.userId, state);
    }
    if (filter.lazyLoadMembers) {
      const senders = new Set(timeline.events.map((e) => e.event.sender));
      for (const key of [...state.keys()]) if (isMemberKey(key) && !senders.has(splitStateKey(key)[1])) state.delete(key);
    }
    const stateRecords = await stateEvents(reader, state, filter.state, roomId);
    const formatOptions = this.formatOptions(params);
    const accountEvents = filter.roomAccountData.filter(
      (roomAccountData.get(roomId) ?? []).map((r) => ({ type: r.type, content: r.content, room_id: roomId })),
    );
    return {
      timeline: {
        events: await reader.format(timeline.events, formatOptions),
        limited: timeline.limited,
        ...(await prevBatch(reader, roomId, timeline.events, true, leaveAt)),
      },
      state: { events: await reader.format(stateRecords, formatOptions) },
      account_data: { events: accountEvents.map(({ type, content }) => ({ type, content })) },
    };
  }

  // -------------------------------------------------------------------------
  // Device lists

  /** device_lists: the shared rule of keys/device-lists.ts over what this sync saw of memberships. */
  private async deviceLists(pass: Pass, hints: DeviceListHints): Promise<DeviceListDelta> {
    const { reader, since, upTo, canSkip, params } = pass;
    const txn = reader.txn;
    const listChanges = !canSkip || this.notifier.deviceListsAfter(since!) ? await txn.deviceLists.changes({ from: since, to: upTo }) : [];
    return deviceListDelta(txn, {
      userId: params.userId,
      from: since!,
      listChanges,
      newlyJoinedRooms: hints.newlyJoinedRooms,
      leftRooms: hints.leftRooms,
      memberEvents: hints.memberEvents,
      sharedUsers: async () => {
        const shared = new Set([params.userId]);
        const lists = await Promise.all(hints.joinedRooms.map((roomId) => txn.memberships.forRoom(roomId, 'join')));
        for (const list of lists) for (const m of list) shared.add(m.userId);
        return shared;
      },
    });
  }
}

interface DeviceListHints {
  joinedRooms: string[];
  newlyJoinedRooms: string[];
  leftRooms: string[];
  memberEvents: EventRecord[];
}

// ---------------------------------------------------------------------------
// Helpers shared with /messages and /context

/** Raw (unfiltered) events a timeline read saw: every event of the room in (from, upper], oldest first. */
export interface SeenWindow {
  events: EventRecord[];
  from: number;
}

export interface RecentEvents {
  events: EventRecord[];
  limited: boolean;
  seen: SeenWindow;
}

/** Windows up to this many events are read forwards in one request (IndexedDB walks backwards a cursor step at a time). */
const FORWARD_READ = 50;

/**
 * The newest `limit` events of a room in the stream window (lower, upper]
 * that pass the filter and that the user may see, oldest first; `limited`
 * when more such events precede them in the window (or the scan gave up).
 * A short window (an incremental sync's usual case) is read forwards in one
 * request; otherwise batches are read backwards from `upper`.
 */
export async function loadRecent(
  reader: RoomReader,
  roomId: string,
  view: MembershipView,
  lower: number | undefined,
  upper: number,
  limit: number,
  filter: EventFilter,
): Promise<RecentEvents> {
  if (lower !== undefined) {
    const peek = Math.max(limit + 1, FORWARD_READ);
    const all = await reader.txn.timeline.range(roomId, { dir: 'f', from: lower, to: upper, limit: peek });
    if (all.length < peek) {
      reader.remember(all);
      const visible = await visibleEvents(reader, roomId, view, all.filter((r) => filter.matches(filterable(r))));
      return {
        events: limit === 0 ? [] : visible.slice(-limit),
        limited: visible.length > limit,
        seen: { events: all, from: lower },
      };
    }
  }
  const out: EventRecord[] = [];
  const scannedBatches: EventRecord[][] = [];
  let from = upper;
  let scanned = 0;
  const batchSize = Math.min(limit + 1, 200);
  const result = (limited: boolean, exhausted: boolean): RecentEvents => {
    const seen = scannedBatches.flat().reverse();
    const oldest = seen[0];
    return {
      events: out.reverse(),
      limited,
      seen: { events: seen, from: exhausted || !oldest ? (lower ?? 0) : oldest.streamOrdering! - 1 },
    };
  };
  for (;;) {
    const batch = await reader.txn.timeline.range(roomId, { dir: 'b', from, to: lower, limit: batchSize });
    reader.remember(batch);
    scannedBatches.push(batch);
    const candidates = batch.filter((r) => filter.matches(filterable(r)));
    const visible = await visibleEvents(reader, roomId, view, candidates);
    for (const record of visible) {
      if (out.length === limit) return result(true, false);
      out.push(record);
    }
    scanned += batch.length;
    if (batch.length < batchSize) return result(false, true);
    if (scanned >= TIMELINE_SCAN_LIMIT) return result(true, false);
    from = batch[batch.length - 1].streamOrdering! - 1;
  }
}

/** What filters look at in a stored event. */
export function filterable(record: EventRecord): { type: string; sender: string; room_id: string; content: unknown } {
  return { type: record.event.type, sender: record.event.sender, room_id: record.roomId, content: record.event.content };
}

/**
 * The state a client needs before a timeline so that applying the timeline
 * yields `end`: for each key, the end value unless the timeline sets it
 * (then the value at the timeline's start), leaving out what the client
 * already has (`previous`, the state at its last sync) and timeline events.
 */
function pickState(start: StateMap, end: StateMap, timeline: ReadonlySet<string>, previous: StateMap | undefined): StateMap {
  const out: StateMap = new Map();
  const keys = new Set([...start.keys(), ...end.keys()]);
  for (const key of keys) {
    const atEnd = end.get(key);
    const atStart = start.get(key);
    let value: string | undefined;
    if (atEnd !== undefined && !timeline.has(atEnd)) value = atEnd;
    else if (atStart !== undefined && !timeline.has(atStart)) value = atStart;
    if (value === undefined || previous?.get(key) === value) continue;
    out.set(key, value);
  }
  return out;
}

async function stateEvents(reader: RoomReader, state: StateMap, filter: EventFilter, roomId: string): Promise<EventRecord[]> {
  if (state.size === 0) return [];
  const records = await reader.getEvents(state.values());
  const out: EventRecord[] = [];
  for (const eventId of state.values()) {
    const record = records.get(eventId);
    if (record && filter.matches({ ...filterable(record), room_id: roomId })) out.push(record);
  }
  // Oldest first, as the state would have been built.
  out.sort((a, b) => (a.streamOrdering ?? 0) - (b.streamOrdering ?? 0));
  return out;
}

/** prev_batch: the gap before the first timeline event; for an empty full timeline, the gap after the newest event. */
async function prevBatch(reader: RoomReader, roomId: string, events: EventRecord[], full: boolean, upTo: number): Promise<Json> {
  if (events.length > 0) return { prev_batch: formatTopoToken(gapBefore(events[0])) };
  if (!full) return {};
  const [last] = await reader.txn.timeline.range(roomId, { dir: 'b', from: upTo, limit: 1 });
  return last ? { prev_batch: formatTopoToken(gapAfter(last)) } : {};
}

/** The m.receipt content for receipts: {eventId: {type: {userId: {ts, thread_id?}}}}, others' private receipts left out. */
export function receiptContent(receipts: readonly ReceiptRecord[], viewer: string): Json | undefined {
  const content: Record<string, Record<string, Record<string, Json>>> = {};
  let any = false;
  for (const r of receipts) {
    if (r.receiptType === 'm.read.private' && r.userId !== viewer) continue;
    // Event IDs, receipt types and user IDs are keys from input: own properties only (own-keys.ts).
    const byType = ownSlot(content, r.eventId, () => ({}));
    const byUser = ownSlot(byType, r.receiptType, () => ({}));
    // The same user's threaded and unthreaded receipts on one event share a slot: the unthreaded one wins.
    const earlier = getOwn(byUser, r.userId) as Record<string, Json> | undefined;
    if (r.threadId && earlier && earlier.thread_id === undefined) continue;
    setOwn(byUser, r.userId, r.threadId ? { ts: r.ts, thread_id: r.threadId } : { ts: r.ts });
    any = true;
  }
  return any ? content : undefined;
}

function isMemberKey(key: string): boolean {
  return key.startsWith('["m.room.member",');
}

function limitList<T>(list: T[], limit: number | undefined): T[] {
  return limit === undefined ? list : list.slice(0, limit);
}

async function hasNonEmpty(reader: RoomReader, eventId: string | undefined, field: string): Promise<boolean> {
  if (!eventId) return false;
  const record = await reader.getEvent(eventId);
  const value = record?.event.content?.[field];
  return typeof value === 'string' && value !== '';
}

/** A storage read saw commits the notifier had not reported when the read's skip decisions were taken. */
class UnseenCommits extends Error {
  constructor() {
    super('the read saw commits the notifier has not reported yet');
    this.name = 'UnseenCommits';
  }
}

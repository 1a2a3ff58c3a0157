/**
 * The room engine: the one path by which events enter a room (see types.ts
 * for the contract). It owns local sends: a local event is built from the
 * engine's in-memory view of the room (prev_events = forward extremities,
 * capped at MAX_PREV_EVENTS like Synapse; auth_events picked from current
 * state; depth = deepest parent + 1), signed, given its ID and checked
 * against the auth rules. That gives a WritePlan; received events get theirs
 * from the receive checks (receive.ts); persist.ts writes either kind in one
 * storage write, including the outbox entries that carry a local event to
 * the other servers in the room. Client transaction IDs are kept by
 * client-txns.ts, signing keys of other servers found by server-keys.ts.
 *
 * Writes to one room are serialised by a per-room lock; the room's version,
 * current state, state group and extremities are cached in memory and updated
 * only after the write commits, so a local send costs one signature and one
 * write, and a failed write leaves both storage and cache as they were.
 */
import {
  actionPowerLevel,
  canonicalJson,
  checkEventAuth,
  CoreError,
  pickAuthEvents,
  powerLevelOf,
  roomIdFromCreateEvent,
  roomVersionRules,
  serverNameOf,
  splitStateKey,
  type PDU,
  type StateMap,
} from '../../core/index.js';
import type { EventRecord, Membership, UserRecord } from '../../storage/types.js';
import { randomId, type HomeserverContext } from '../context.js';
import { forbidden, invalidParam, MatrixError, notFound } from '../http/errors.js';
import { planCreateRoom, type CreateDraft } from './create-room.js';
import {
  addProfile,
  authorise,
  buildEvent,
  checkCanonicalAlias,
  draftEvent,
  inviteRoomState,
  pendingRecord,
  redactionToApply,
  signPrepared,
  type Prepared,
} from './build.js';
import { ClientTxnMemory, type TxnKey } from './client-txns.js';
import { KeyedLock } from './lock.js';
import { federationForm, persist, remoteServersOf } from './persist.js';
import { ReadCaches } from '../sync/room-reader.js';
import { checkFormat, identifyPdus, receivePdus, verifySigned, type PduOutcome, type ReceiveHost } from './receive.js';
import { receiveOnTip, RecentEvents } from './receive-tip.js';
import { RoomState, stateEntryOf } from './room-state.js';
import { serverKeys, type KeyOf, type ServerKeyLookup } from './server-keys.js';
import { importJoinedRoom, type JoinedRoomImport } from './join-import.js';
import { importHistory, type HistoryOutcome, type StateFetcher } from './history.js';
import {
  forgottenRoomKey,
  type ClientTxn,
  type CreateRoomRequest,
  type EventDraft,
  type MemberProfile,
  type MembershipAction,
  type MembershipOptions,
  type ReceiveResult,
  type RoomEngine,
  type StateEntry,
} from './types.js';
import { checkIdLength, checkPowerLevelsContent, parseRoomAlias } from './validate.js';

export interface RoomEngineOptions {
  /**
   * The public keys of a remote server, by key ID, for checking signatures of
   * received events. @default a server whose name is 64 hex digits is its own
   * ed25519 public key (DESIGN.md "Identity and names"); others are unknown.
   */
  serverKeys?: ServerKeyLookup;
  /** How many recent transaction IDs to remember for unsigned.transaction_id. @default 10000 */
  rememberedTransactions?: number;
  /** The homeserver's caches of immutable data (state groups), shared with sync. @default its own */
  caches?: ReadCaches;
  /**
   * Has the invitee's server countersign an invite of a remote user (federation invite v2); returns the
   * event with both signatures. @default undefined: remote invites fail with 403 (no federation).
   */
  remoteInvite?(roomVersion: string, event: PDU, inviteRoomState: unknown[]): Promise<unknown>;
}

const MEMBER_PROFILE_MEMBERSHIPS = new Set(['join', 'invite', 'knock']);

function sameJson(a: unknown, b: unknown): boolean {
  try {
    return canonicalJson(a as never) === canonicalJson(b as never);
  } catch {
    return false;
  }
}

export function createRoomEngine(ctx: HomeserverContext, options: RoomEngineOptions = {}): RoomEngine {
  return new Engine(ctx, options);
}

class Engine implements RoomEngine {
  private readonly rooms = new Map<string, RoomState>();
  private readonly lock = new KeyedLock();
  private readonly txns: ClientTxnMemory;
  private readonly receiveHost: ReceiveHost;
  /** Events written since boot (bounded): what lets a peer's next message skip every read (receive-tip.ts). */
  private readonly recent = new RecentEvents();
  private readonly keyOf: KeyOf;
  private readonly remoteInvite: RoomEngineOptions['remoteInvite'];
  /** Last origin_server_ts given to a v12 create event: keeps room IDs of quick successive creates apart. */
  private lastCreateTs = 0;

  constructor(
    private readonly ctx: HomeserverContext,
    options: RoomEngineOptions,
  ) {
    this.remoteInvite = options.remoteInvite;
    this.keyOf = serverKeys(ctx.signer, options.serverKeys);
    this.txns = new ClientTxnMemory(options.rememberedTransactions ?? 10_000);
    this.receiveHost = {
      ctx,
      caches: options.caches ?? new ReadCaches(),
      lock: this.lock,
      keyOf: this.keyOf,
      room: (roomId) => this.room(roomId),
      loadRoom: (roomId) => this.loadRoom(roomId),
    };
    this.recent.follow(ctx.storage);
  }

  // -------------------------------------------------------------------------
  // Reading

  async roomVersion(roomId: string): Promise<string | undefined> {
    return (await this.room(roomId))?.version;
  }

  async currentStateEvent(roomId: string, type: string, stateKey: string): Promise<PDU | undefined> {
    return (await this.room(roomId))?.get(type, stateKey)?.record.event;
  }

  async currentState(roomId: string): Promise<ReadonlyMap<string, StateEntry> | undefined> {
    return (await this.room(roomId))?.state;
  }

  async membership(roomId: string, userId: string): Promise<Membership | undefined> {
    return (await this.room(roomId))?.membershipOf(userId);
  }

  async stateAfter(eventId: string): Promise<StateMap | undefined> {
    return this.ctx.storage.read(async (txn) => {
      const groups = await txn.eventState.get(eventId);
      return groups ? txn.stateGroups.load(groups.after) : undefined;
    });
  }

  async stateBefore(eventId: string): Promise<StateMap | undefined> {
    return this.ctx.storage.read(async (txn) => {
      const groups = await txn.eventState.get(eventId);
      return groups ? txn.stateGroups.load(groups.before) : undefined;
    });
  }

  transactionIdFor(eventId: string, userId: string, deviceId: string): string | undefined {
    return this.txns.transactionIdFor(eventId, userId, deviceId);
  }

  /** The cached room, loading it (under its lock) on first use. */
  private async room(roomId: string): Promise<RoomState | undefined> {
    return this.rooms.get(roomId) ?? this.lock.run(roomId, () => this.loadRoom(roomId));
  }

  /** Like room(), for callers that already hold the room's lock. */
  private async loadRoom(roomId: string): Promise<RoomState | undefined> {
    const cached = this.rooms.get(roomId);
    if (cached) return cached;
    const loaded = await this.ctx.storage.read((txn) => RoomState.load(txn, roomId));
    if (loaded) this.rooms.set(roomId, loaded);
    return loaded;
  }

  // -------------------------------------------------------------------------
  // Local events

  async sendEvent(roomId: string, sender: string, draft: EventDraft, options: { txn?: ClientTxn } = {}): Promise<EventRecord> {
    checkIdLength('type', draft.type);
    if (draft.stateKey !== undefined) checkIdLength('state_key', draft.stateKey);
    const txn = options.txn ? { userId: sender, ...options.txn } : undefined;
    const remembered = this.txns.eventFor(txn);
    if (remembered) return this.loadRecord(remembered);

    return this.lock.run(roomId, () =>
      this.withTxnReplay(txn, async () => {
        const room = await this.loadRoom(roomId);
        // Synapse answers 403 for sends into unknown rooms too: they are rooms the user is not in.
        if (!room) throw forbidden(`User ${sender} not in room ${roomId}`);
        if (draft.type === 'm.room.create') throw invalidParam('Cannot resend m.room.create event');
        const isMemberEvent = draft.type === 'm.room.member' && draft.stateKey !== undefined;
        if (!isMemberEvent && room.membershipOf(sender) !== 'join') throw forbidden(`User ${sender} not in room ${roomId}`);
        if (draft.type === 'm.room.power_levels' && draft.stateKey === '') checkPowerLevelsContent(draft.content);
        if (draft.stateKey !== undefined) {
          // Re-sending the current state unchanged adds nothing (Synapse returns the existing event).
          const current = room.get(draft.type, draft.stateKey);
          const unchanged = current && !current.record.redactedBy && current.record.event.sender === sender;
          if (unchanged && sameJson(current.record.event.content, draft.content)) {
            return current.record;
          }
        }
        let redacts: string | undefined;
        if (draft.type === 'm.room.redaction' && draft.stateKey === undefined) {
          const inContent = draft.content.redacts;
          redacts = draft.redacts ?? (typeof inContent === 'string' ? inContent : undefined);
        }
        const prepared = await buildEvent(this.ctx, room, sender, draft, redacts);
        authorise(room, prepared);
        return this.commitLocal(room, prepared, { txn, redacts });
      }),
    );
  }

  async updateMembership(
    roomId: string,
    sender: string,
    target: string,
    action: MembershipAction,
    options: MembershipOptions = {},
  ): Promise<EventRecord> {
    const membership: Membership = action === 'kick' || action === 'unban' ? 'leave' : action;
    const txn = options.txn ? { userId: sender, ...options.txn } : undefined;
    const remembered = this.txns.eventFor(txn);
    if (remembered) return this.loadRecord(remembered);

    // The target's profile goes into joins and invites (a read outside the room's lock: it is not room data).
    const given = options.content ?? {};
    const wantsProfile =
      MEMBER_PROFILE_MEMBERSHIPS.has(membership) && this.isLocal(target) && (!('displayname' in given) || !('avatar_url' in given));
    const profile = wantsProfile ? await this.ctx.storage.read((t) => t.users.get(target)) : undefined;

    return this.lock.run(roomId, () =>
      this.withTxnReplay(txn, async () => {
        const room = await this.loadRoom(roomId);
        if (!room) {
          if (membership === 'join' || action === 'knock') throw notFound('No known servers');
          if (action === 'leave') throw notFound('Not a known room');
          throw forbidden('Unknown room');
        }
        const previous = room.get('m.room.member', target);
        const before = room.membershipOf(target);
        if (action === 'unban' && before !== 'ban') {
          throw new MatrixError(403, 'M_BAD_STATE', `Cannot unban user who was not banned (membership=${before ?? 'None'})`);
        }
        if (before === 'ban' && action !== 'ban' && action !== 'unban' && action !== 'leave') {
          throw new MatrixError(403, 'M_BAD_STATE', `Cannot ${action} user who was banned`);
        }
        if (action === 'kick' && (before === undefined || before === 'leave' || before === 'ban')) {
          throw forbidden('The target user is not in the room');
        }

        const content: Record<string, unknown> = { ...given };
        // Only a resident server may add this (and sign for it); clients echo it back by mistake.
        delete content.join_authorised_via_users_server;
        content.membership = membership;
        if (options.reason !== undefined) content.reason = options.reason;
        if (options.isDirect && membership === 'invite') content.is_direct = true;
        if (profile && MEMBER_PROFILE_MEMBERSHIPS.has(membership)) addProfile(content, profile);
        if (membership === 'join' && before !== 'join' && before !== 'invite') {
          const authoriser = await this.restrictedJoinAuthoriser(room, target);
          if (authoriser !== undefined) content.join_authorised_via_users_server = authoriser;
        }

        // Repeating the current membership with the same content changes nothing (Synapse returns the old event).
        if (previous && previous.record.event.sender === sender && before === membership && sameJson(previous.record.event.content, content)) {
          return previous.record;
        }
        const unsigned = membership === 'invite' ? { invite_room_state: inviteRoomState(room, sender) } : undefined;
        let prepared = await buildEvent(this.ctx, room, sender, { type: 'm.room.member', stateKey: target, content }, undefined, unsigned);
        authorise(room, prepared);
        if (membership === 'invite' && !this.isLocal(target)) prepared = await this.countersigned(room, prepared, unsigned!.invite_room_state as unknown[]);
        return this.commitLocal(room, prepared, { txn });
      }),
    );
  }

  async forgetRoom(userId: string, roomId: string): Promise<void> {
    const room = await this.room(roomId);
    const membership = room?.membershipOf(userId);
    if (membership !== undefined && membership !== 'leave' && membership !== 'ban') {
      throw new MatrixError(400, 'M_UNKNOWN', `User ${userId} in room ${roomId}`);
    }
    // Nothing to forget in a room the user never had a membership of (Synapse answers 200 as well).
    if (!room || membership === undefined) return;
    await this.ctx.storage.write((txn) => txn.meta.put(forgottenRoomKey(userId, roomId), true));
  }

  async updateProfileInRooms(userId: string, profile: MemberProfile): Promise<void> {
    const joined = await this.ctx.storage.read((txn) => txn.memberships.forUser(userId, 'join'));
    for (const { roomId } of joined) {
      try {
        await this.lock.run(roomId, async () => {
          const room = await this.loadRoom(roomId);
          if (!room || room.membershipOf(userId) !== 'join') return;
          const content: Record<string, unknown> = { membership: 'join' };
          if (typeof profile.displayname === 'string') content.displayname = profile.displayname;
          if (typeof profile.avatar_url === 'string') content.avatar_url = profile.avatar_url;
          const previous = room.get('m.room.member', userId);
          if (previous && sameJson(previous.record.event.content, content)) return;
          const prepared = await buildEvent(this.ctx, room, userId, { type: 'm.room.member', stateKey: userId, content });
          authorise(room, prepared);
          await this.commitLocal(room, prepared, {});
        });
      } catch (error) {
        // One room refusing (e.g. a ban racing the update) must not stop the others.
        this.ctx.log.warn(`profile update of ${userId} in ${roomId} failed`, error);
      }
    }
  }

  /** Runs `fn`; if it fails and the client transaction already produced an event, returns that event instead. */
  private async withTxnReplay(txn: TxnKey | undefined, fn: () => Promise<EventRecord>): Promise<EventRecord> {
    try {
      return await fn();
    } catch (error) {
      if (txn && error instanceof MatrixError) {
        const prior = await this.ctx.storage.read((t) => t.transactionIds.get(txn.userId, txn.deviceId, txn.txnId));
        if (prior?.eventId) return this.loadRecord(prior.eventId);
      }
      throw error;
    }
  }

  private async loadRecord(eventId: string): Promise<EventRecord> {
    const record = await this.ctx.storage.read((txn) => txn.events.get(eventId));
    if (!record) throw new Error(`event ${eventId} of a recorded transaction is not stored`);
    return record;
  }

  private isLocal(userId: string): boolean {
    const colon = userId.indexOf(':');
    return colon >= 0 && userId.slice(colon + 1) === this.ctx.serverName;
  }

  /**
   * For a join to a restricted room: a local member who may invite, if the
   * joiner is in one of the rooms the join rule allows (spec "Restricted
   * rooms"). Memberships of the allowed rooms are read from storage, not from
   * their caches, so no second room lock is taken.
   */
  private async restrictedJoinAuthoriser(room: RoomState, target: string): Promise<string | undefined> {
    const joinRules = room.get('m.room.join_rules', '')?.pdu.content ?? {};
    const rule = joinRules.join_rule;
    const restricted = (rule === 'restricted' && room.rules.restrictedJoins) || (rule === 'knock_restricted' && room.rules.knockRestricted);
    if (!restricted || !Array.isArray(joinRules.allow)) return undefined;
    const allowed = joinRules.allow
      .filter((entry): entry is { type: string; room_id: string } => typeof entry === 'object' && entry !== null && entry.type === 'm.room_membership' && typeof entry.room_id === 'string')
      .map((entry) => entry.room_id);
    if (allowed.length === 0) return undefined;
    const memberships = await this.ctx.storage.read((t) => Promise.all(allowed.map((id) => t.memberships.get(id, target))));
    if (!memberships.some((m) => m?.membership === 'join')) return undefined;
    const needed = actionPowerLevel('invite', room.powerLevels);
    return room
      .members('join')
      .filter((userId) => this.isLocal(userId))
      .find((userId) => powerLevelOf(userId, room.powerLevels, room.createEvent, room.rules) >= needed);
  }

  /** Persists a local event built on the room's current state (persist.ts), and queues it for the other servers. */
  private async commitLocal(room: RoomState, prepared: Prepared, opts: { txn?: TxnKey; redacts?: string }): Promise<EventRecord> {
    const parents = new Set(prepared.event.prev_events);
    const extremities = new Map([...room.extremities].filter(([id]) => !parents.has(id)));
    extremities.set(prepared.eventId, prepared.depth);
    const { redacts } = opts;
    const isAlias = prepared.pdu.type === 'm.room.canonical_alias' && prepared.pdu.state_key === '';
    const isMember = prepared.pdu.type === 'm.room.member';
    const persisted = await persist(this.ctx, room, {
      ...prepared,
      status: 'timeline',
      before: room.stateGroup !== undefined ? { group: room.stateGroup } : { state: room.stateIds() },
      extremities,
      txn: opts.txn,
      // The servers with joined members after this event (a remote user's join or leave concerns their server too).
      // An invitee's server has the invite already (invite v2), and holds no room to put it in.
      destinations: remoteServersOf(room, this.ctx.serverName, isMember && prepared.pdu.content.membership !== 'invite' ? [prepared.pdu.state_key as string] : []),
      inWrite: async (t) => {
        if (isAlias) await checkCanonicalAlias(t, room, prepared.pdu);
        return redacts === undefined ? undefined : redactionToApply(t, room, prepared, redacts);
      },
    }, this.txns);
    return 'record' in persisted ? persisted.record : this.loadRecord(persisted.replayedEventId);
  }

  // -------------------------------------------------------------------------
  // createRoom

  async createRoom(creator: string, request: CreateRoomRequest): Promise<{ roomId: string; alias?: string }> {
    const plan = planCreateRoom(creator, request, this.ctx.config.defaultRoomVersion);
    const version = plan.roomVersion;
    const rules = roomVersionRules(version);
    const alias = plan.aliasLocalpart === undefined ? undefined : `#${plan.aliasLocalpart}:${this.ctx.serverName}`;
    if (alias !== undefined && !parseRoomAlias(alias)) throw invalidParam('Invalid room alias');

    const localUsers = [creator, ...plan.invitees.filter((id) => this.isLocal(id))];
    const { profiles, aliasTaken } = await this.ctx.storage.read(async (txn) => {
      const users = await Promise.all(localUsers.map((id) => txn.users.get(id)));
      return {
        profiles: new Map(users.filter((u): u is UserRecord => u !== undefined).map((u) => [u.userId, u])),
        aliasTaken: alias !== undefined && (await txn.aliases.get(alias)) !== undefined,
      };
    });
    // Checked again in the write (another request may take it meanwhile); here to fail before signing anything.
    if (aliasTaken) throw new MatrixError(400, 'M_ROOM_IN_USE', 'Room alias already taken');

    // The create event. In v12 the room ID is its hash, so it is signed first.
    const now = this.ctx.clock.now();
    const createContent: Record<string, unknown> = { ...plan.createContent, room_version: version };
    if (!rules.implicitCreator) createContent.creator = creator;
    const createEvent: PDU = {
      type: 'm.room.create',
      state_key: '',
      sender: creator,
      content: createContent,
      origin_server_ts: now,
      depth: 1,
      prev_events: [],
      auth_events: [],
    };
    let roomId: string;
    let create: Prepared;
    if (rules.roomIdFromCreateEvent) {
      // Two creates by one user with the same content in the same millisecond would share a room ID.
      createEvent.origin_server_ts = Math.max(now, this.lastCreateTs + 1);
      this.lastCreateTs = createEvent.origin_server_ts;
      create = await signPrepared(this.ctx, createEvent, version);
      roomId = roomIdFromCreateEvent(create.event, version);
    } else {
      roomId = `!${randomId(this.ctx, 18)}:${this.ctx.serverName}`;
      createEvent.room_id = roomId;
      create = await signPrepared(this.ctx, createEvent, version);
    }

    // Build every event against a room that exists only in memory until the write.
    const room = new RoomState(roomId, version, creator);
    const prepared: Prepared[] = [];
    const add = (p: Prepared) => {
      const check = checkEventAuth(p.pdu, pickAuthEvents(p.pdu, room.lookup, rules), version);
      if (!check.allowed) throw new MatrixError(400, 'M_INVALID_ROOM_STATE', `${p.pdu.type} event not allowed: ${check.reason}`);
      prepared.push(p);
      room.state.set(p.key as string, stateEntryOf(pendingRecord(p, roomId), version));
      room.extremities.clear();
      room.extremities.set(p.eventId, p.depth);
    };
    add(create);

    const creatorJoin: Record<string, unknown> = { membership: 'join' };
    addProfile(creatorJoin, profiles.get(creator));
    add(await buildEvent(this.ctx, room, creator, { type: 'm.room.member', stateKey: creator, content: creatorJoin }));
    for (const draft of plan.stateDrafts) {
      add(await buildEvent(this.ctx, room, creator, this.resolveDraft(draft, alias)));
    }
    // Remote invitees are invited after the room exists, one by one: their servers countersign (invite v2).
    for (const invitee of plan.invitees.filter((id) => this.isLocal(id))) {
      const content: Record<string, unknown> = { membership: 'invite' };
      if (plan.isDirect) content.is_direct = true;
      addProfile(content, profiles.get(invitee));
      const unsigned = { invite_room_state: inviteRoomState(room, creator) };
      add(await buildEvent(this.ctx, room, creator, { type: 'm.room.member', stateKey: invitee, content }, undefined, unsigned));
    }

    const last = prepared[prepared.length - 1]!;
    const committed = await this.lock.run(roomId, () =>
      this.ctx.storage.write(async (t) => {
        if (alias !== undefined && (await t.aliases.get(alias))) throw new MatrixError(400, 'M_ROOM_IN_USE', 'Room alias already taken');
        if (await t.rooms.get(roomId)) throw new MatrixError(500, 'M_UNKNOWN', "Couldn't generate a unique room ID");
        await t.rooms.put({ roomId, roomVersion: version, creator, createdAt: now });
        // The create event's state before is the empty state.
        let group = await t.stateGroups.create(roomId, new Map());
        const records: EventRecord[] = [];
        const finalState = new Map<string, string | null>();
        for (const p of prepared) {
          const before = group;
          group = await t.stateGroups.create(roomId, new Map([[p.key as string, p.eventId]]), before);
          records.push(await t.events.add({ eventId: p.eventId, roomId, event: p.event, depth: p.depth, stateGroups: { before, after: group } }));
          finalState.set(p.key as string, p.eventId);
        }
        await t.currentState.apply(roomId, finalState);
        for (const [key, eventId] of finalState) {
          const entry = room.state.get(key)!;
          if (entry.pdu.type !== 'm.room.member' || typeof entry.pdu.content.membership !== 'string') continue;
          await t.memberships.set({ roomId, userId: splitStateKey(key)[1], membership: entry.pdu.content.membership as Membership, eventId: eventId as string });
        }
        await t.dag.setExtremities(roomId, [last.eventId]);
        if (plan.isPublic) await t.directory.setPublic(roomId, true);
        if (alias !== undefined) await t.aliases.add({ alias, roomId, creator });
        return { records, group };
      }),
    );

    // Committed: the cache gets the stored records (with their stream positions).
    const byId = new Map(committed.records.map((r) => [r.eventId, r]));
    for (const [key, entry] of room.state) room.state.set(key, stateEntryOf(byId.get(entry.record.eventId)!, version));
    room.stateGroup = committed.group;
    this.rooms.set(roomId, room);
    for (const invitee of plan.invitees.filter((id) => !this.isLocal(id))) {
      try {
        await this.updateMembership(roomId, creator, invitee, 'invite', { isDirect: plan.isDirect });
      } catch (error) {
        // The room stands (Synapse also creates it when a remote invite fails); the inviter may retry.
        this.ctx.log.warn(`invite of ${invitee} to new room ${roomId} failed`, error);
      }
    }
    return alias === undefined ? { roomId } : { roomId, alias };
  }

  /** A createRoom draft as an event draft; the canonical alias draft carries only the local part. */
  private resolveDraft(draft: CreateDraft, alias: string | undefined): EventDraft {
    if (draft.type === 'm.room.canonical_alias' && alias !== undefined && draft.content.alias === alias.slice(1, alias.indexOf(':'))) {
      return { type: draft.type, stateKey: draft.stateKey, content: { alias } };
    }
    return { type: draft.type, stateKey: draft.stateKey, content: draft.content };
  }

  // -------------------------------------------------------------------------
  // Membership across servers (the federation module does the talking)

  /** An invite of a remote user, countersigned by the invitee's server (which must not change the event). */
  private async countersigned(room: RoomState, prepared: Prepared, inviteRoomState: unknown[]): Promise<Prepared> {
    const target = prepared.pdu.state_key as string;
    if (!this.remoteInvite) throw forbidden(`Cannot invite ${target}: this server is not connected to other servers`);
    const answer = await this.remoteInvite(room.version, federationForm(prepared.event), inviteRoomState);
    const formed = checkFormat(answer, room.version);
    if ('failure' in formed || formed.eventId !== prepared.eventId) {
      throw new MatrixError(502, 'M_UNKNOWN', `The server of ${target} answered the invite with another event`);
    }
    const signed = await verifySigned(this.keyOf, formed.wire, room.version, [serverNameOf(target)]);
    if ('failure' in signed) throw new MatrixError(502, 'M_UNKNOWN', `The server of ${target} did not sign the invite: ${signed.failure}`);
    return { ...prepared, event: { ...formed.wire, unsigned: prepared.event.unsigned } as PDU };
  }

  /**
   * The unsigned member event a remote user may sign to join or leave (make_join / make_leave): built on the
   * room's current extremities and state, checked against current state. 404 for rooms this server is not in.
   */
  async membershipTemplate(roomId: string, userId: string, membership: 'join' | 'leave' | 'knock'): Promise<{ roomVersion: string; event: PDU }> {
    return this.lock.run(roomId, async () => {
      const room = await this.loadRoom(roomId);
      if (!room || !room.members('join').some((id) => this.isLocal(id))) throw notFound(`This server is not in room ${roomId}`);
      const content: Record<string, unknown> = { membership };
      const before = room.membershipOf(userId);
      if (membership === 'join' && before !== 'join' && before !== 'invite') {
        const authoriser = await this.restrictedJoinAuthoriser(room, userId);
        if (authoriser !== undefined) content.join_authorised_via_users_server = authoriser;
      }
      const event = draftEvent(this.ctx, room, userId, { type: 'm.room.member', stateKey: userId, content });
      const template: PDU = { ...event, event_id: '$template' };
      // A restricted join's authorising server is this one: it signs at send_join, so count that signature as given.
      const check = checkEventAuth(template, pickAuthEvents(template, room.lookup, room.rules), room.version, {
        isSignedByServer: (_event, server) => server === this.ctx.serverName,
      });
      if (!check.allowed) throw forbidden(check.reason);
      return { roomVersion: room.version, event };
    });
  }

  /** Older events from a peer's backfill, stored behind the timeline (history.ts). */
  async importHistory(roomId: string, pdus: readonly unknown[], origin: string, fetchState: StateFetcher): Promise<HistoryOutcome | undefined> {
    const room = await this.room(roomId);
    if (!room) return undefined;
    const host = { ctx: this.ctx, keyOf: this.keyOf, caches: this.receiveHost.caches, locked: <T>(id: string, fn: () => Promise<T>) => this.lock.run(id, fn) };
    return importHistory(host, room, pdus, origin, fetchState);
  }

  /** Stores the state and auth chain a resident server sent for our join, and the join itself (join-import.ts). */
  async importJoin(input: JoinedRoomImport): Promise<string> {
    return this.lock.run(input.roomId, async () => {
      const { joinId } = await importJoinedRoom(this.ctx, this.keyOf, input);
      this.rooms.delete(input.roomId);
      await this.loadRoom(input.roomId);
      return joinId;
    });
  }

  /**
   * A member event for a room this server holds no state of (a remote invite for a local user, a rejection
   * of one): stored as an outlier with the membership it gives, so /sync shows it. In a room this server is
   * in, the event goes through the receive checks instead.
   */
  async storeOutlierMembership(roomId: string, roomVersion: string, eventId: string, event: PDU, origin: string): Promise<void> {
    if (await this.room(roomId)) {
      const [outcome] = await this.receivePdus([federationForm(event)], origin);
      if (outcome!.outcome !== 'accepted' && outcome!.outcome !== 'duplicate') {
        throw forbidden(`The member event is not allowed here: ${outcome!.outcome} ${outcome!.reason ?? ''}`);
      }
      return;
    }
    void roomVersion;
    const membership = event.content.membership as Membership;
    await this.ctx.storage.write(async (t) => {
      if (!(await t.events.has(eventId))) await t.events.add({ eventId, roomId, event, depth: event.depth ?? 0, outlier: true });
      await t.memberships.set({ roomId, userId: event.state_key as string, membership, eventId });
      // An outlier takes no stream position; /sync goes by the position at which the notifier saw the change, so
      // the write must move the stream past the client's token (sync.ts, "An outlier member event").
      await t.stream.next();
    });
  }

  /** Rooms a local user is joined to, with their forward extremities and the other servers with joined members. */
  async sharedRooms(): Promise<Array<{ roomId: string; extremities: string[]; servers: string[]; maxDepth: number }>> {
    const records = await this.ctx.storage.read((t) => t.rooms.list());
    const out: Array<{ roomId: string; extremities: string[]; servers: string[]; maxDepth: number }> = [];
    for (const { roomId } of records) {
      const room = await this.room(roomId);
      if (!room || !room.members('join').some((id) => this.isLocal(id))) continue;
      out.push({ roomId, extremities: [...room.extremities.keys()], servers: remoteServersOf(room, this.ctx.serverName), maxDepth: room.maxDepth });
    }
    return out;
  }

  // -------------------------------------------------------------------------
  // Events from peers (receive.ts runs the checks; persist.ts writes)

  async receivePdus(pdus: readonly unknown[], origin: string): Promise<PduOutcome[]> {
    if (pdus.length === 1) {
      const onTip = await receiveOnTip(this.receiveHost, this.recent, this.txns, pdus[0], origin);
      if (onTip) return [onTip];
    }
    return receivePdus(this.receiveHost, pdus, origin);
  }

  identifyPdus(roomId: string, pdus: readonly unknown[]): Promise<(string | undefined)[]> {
    return identifyPdus(this.receiveHost, roomId, pdus);
  }

  async storedEvents(eventIds: readonly string[]): Promise<Set<string>> {
    return this.ctx.storage.read((t) => t.events.storedIds(eventIds));
  }

  async receiveEvent(input: PDU, origin: string): Promise<ReceiveResult> {
    const [result] = await this.receivePdus([input], origin);
    const { eventId, outcome, reason } = result!;
    if (outcome === 'invalid' || outcome === 'missingPrevs' || outcome === 'unknownRoom' || eventId === undefined) {
      throw new CoreError(outcome === 'invalid' ? 'MALFORMED_EVENT' : 'MISSING_EVENT', `${outcome}: ${reason ?? result!.missing?.join(', ')}`);
    }
    return { eventId, outcome, reason };
  }
}


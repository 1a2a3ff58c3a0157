/**
 * Joining a room another server holds (server-server API "Joining rooms"):
 * send_join answers with the room's state before our join and its auth
 * chain. This module checks that answer like any received PDUs (format,
 * signatures, content hash, then every event against its own auth events, in
 * auth order), checks that our join is allowed by that state, and writes it
 * all in one storage write: the state and auth chain as outliers (kept, not
 * in the timeline: history comes later by backfill), the join as the room's
 * first timeline event here, with the room's state before and after it,
 * current state, memberships and forward extremities. The engine reloads the
 * room from storage afterwards.
 */
import {
  checkEventAuth,
  pickAuthEvents,
  redactEvent,
  roomIdFromCreateEvent,
  roomVersionRules,
  splitStateKey,
  stateKeyOf,
  type PDU,
  type StateMap,
} from '../../core/index.js';
import type { Membership } from '../../storage/types.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../http/errors.js';
import { federationForm } from './persist.js';
import { checkFormat, verifySigned } from './receive.js';
import type { KeyOf } from './server-keys.js';
import { forgottenRoomKey } from './types.js';

export interface JoinedRoomImport {
  roomId: string;
  roomVersion: string;
  /** Our join event, signed by us (and by the resident for a restricted join). */
  join: unknown;
  /** send_join's `state` and `auth_chain`. */
  state: readonly unknown[];
  authChain: readonly unknown[];
  /** The resident server that answered. */
  resident: string;
}

const badResponse = (msg: string) => new MatrixError(502, 'M_UNKNOWN', `The resident server's send_join answer is unusable: ${msg}`);

export async function importJoinedRoom(ctx: HomeserverContext, keyOf: KeyOf, input: JoinedRoomImport): Promise<{ joinId: string }> {
  const { roomId, roomVersion: version } = input;
  const rules = roomVersionRules(version);
  // Format, IDs, signatures and content hashes of everything, concurrently.
  const given = [...input.authChain, ...input.state];
  const events = new Map<string, PDU>();
  const inState = new Set<string>();
  const checked = await Promise.all(
    given.map(async (raw) => {
      const formed = checkFormat(raw, version);
      if ('failure' in formed) return undefined;
      const signed = await verifySigned(keyOf, formed.wire, version);
      if ('failure' in signed) return undefined;
      return { eventId: formed.eventId, event: signed.contentHashOk ? formed.wire : (redactEvent(formed.wire, version) as PDU) };
    }),
  );
  checked.forEach((c, i) => {
    if (!c) {
      ctx.log.warn(`send_join from ${input.resident}: dropped an invalid event of the room's state or auth chain`);
      return;
    }
    events.set(c.eventId, c.event);
    if (i >= input.authChain.length) inState.add(c.eventId);
  });

  const joinFormed = checkFormat(input.join, version);
  if ('failure' in joinFormed) throw badResponse(joinFormed.failure);
  const joinSigned = await verifySigned(keyOf, joinFormed.wire, version);
  if ('failure' in joinSigned) throw badResponse(joinSigned.failure);
  const join = joinFormed.wire;
  const joinId = joinFormed.eventId;

  // The create event must be this room's.
  const create = [...events.entries()].find(([id, e]) => inState.has(id) && e.type === 'm.room.create' && e.state_key === '');
  if (!create) throw badResponse('no create event in the state');
  const createRoomId = rules.roomIdFromCreateEvent ? roomIdFromCreateEvent(create[1], version) : create[1].room_id;
  if (createRoomId !== roomId) throw badResponse('the create event is of another room');
  const createPdu: PDU = { ...create[1], event_id: create[0] };

  // Every event against its own auth events, auth events first; failures are stored as rejected.
  const rejected = new Map<string, string>();
  const done = new Set<string>();
  const visit = (id: string, path: Set<string>) => {
    if (done.has(id) || path.has(id)) return;
    const event = events.get(id);
    if (!event) return;
    path.add(id);
    for (const authId of event.auth_events) visit(authId, path);
    path.delete(id);
    done.add(id);
    const authEvents: PDU[] = [];
    for (const authId of event.auth_events) {
      const authEvent = events.get(authId);
      if (!authEvent || rejected.has(authId)) {
        rejected.set(id, `auth event ${authId} is missing or rejected`);
        return;
      }
      authEvents.push({ ...authEvent, event_id: authId });
    }
    if (rules.roomIdFromCreateEvent && id !== create[0]) authEvents.push(createPdu);
    const result = checkEventAuth({ ...event, event_id: id }, authEvents, version);
    if (!result.allowed) rejected.set(id, result.reason);
  };
  for (const id of events.keys()) visit(id, new Set());
  for (const [id, reason] of rejected) ctx.log.warn(`send_join from ${input.resident}: event ${id} of the room's state is rejected: ${reason}`);

  const state: StateMap = new Map();
  for (const id of inState) {
    const event = events.get(id)!;
    if (!rejected.has(id) && typeof event.state_key === 'string') state.set(stateKeyOf(event.type, event.state_key), id);
  }
  const lookup = (type: string, stateKey: string): PDU | undefined => {
    const id = state.get(stateKeyOf(type, stateKey));
    return id === undefined ? undefined : { ...events.get(id)!, event_id: id };
  };
  const joinPdu: PDU = { ...join, event_id: joinId };
  const allowed = checkEventAuth(joinPdu, pickAuthEvents(joinPdu, lookup, rules), version);
  if (!allowed.allowed) throw new MatrixError(403, 'M_FORBIDDEN', `The room's state does not allow the join: ${allowed.reason}`);
  const joinKey = stateKeyOf('m.room.member', join.state_key as string);
  const after: StateMap = new Map(state);
  after.set(joinKey, joinId);
  const servers = new Set<string>();
  for (const [key, id] of after) {
    const [type, userId] = splitStateKey(key);
    const event = id === joinId ? join : events.get(id)!;
    if (type === 'm.room.member' && event.content.membership === 'join') servers.add(userId.slice(userId.indexOf(':') + 1));
  }
  servers.delete(ctx.serverName);
  servers.delete(input.resident);

  await ctx.storage.write(async (t) => {
    if (!(await t.rooms.get(roomId))) {
      await t.rooms.put({ roomId, roomVersion: version, creator: create[1].sender, createdAt: ctx.clock.now() });
    }
    const stored = await t.events.getMany([...events.keys()]);
    for (const [id, event] of events) {
      if (stored.has(id) || id === joinId) continue;
      const reason = rejected.get(id);
      await t.events.add({ eventId: id, roomId, event, depth: event.depth ?? 0, outlier: true, ...(reason ? { rejected: reason } : {}) });
    }
    const before = await t.stateGroups.createFromState(roomId, state);
    const afterGroup = await t.stateGroups.create(roomId, new Map([[joinKey, joinId]]), before);
    await t.events.add({ eventId: joinId, roomId, event: join, depth: join.depth ?? 0, stateGroups: { before, after: afterGroup } });
    await t.currentState.replace(roomId, after);
    for (const [key, id] of after) {
      const [type, userId] = splitStateKey(key);
      if (type !== 'm.room.member') continue;
      const membership = (id === joinId ? join : events.get(id)!).content.membership;
      if (typeof membership === 'string') await t.memberships.set({ roomId, userId, membership: membership as Membership, eventId: id });
    }
    await t.dag.setExtremities(roomId, [joinId]);
    await t.meta.delete(forgottenRoomKey(join.state_key as string, roomId));
    for (const server of servers) await t.outbound.enqueue(server, { pdu: federationForm(join) } as never);
  });
  return { joinId };
}

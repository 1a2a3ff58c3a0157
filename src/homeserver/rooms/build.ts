/**
 * Local events before they are written: turning a draft into an event on top
 * of the room's current extremities (prev_events capped at the spec's 20,
 * deepest first, as Synapse does; depth; auth_events from current state),
 * signing it and giving it its ID, checking it against the auth rules, and
 * the local-only rules a send must pass inside its write (redaction
 * permissions, canonical aliases). Pure over the engine's in-memory room;
 * the engine holds the room's lock while these run.
 */
import {
  actionPowerLevel,
  authEventTypesFor,
  checkEventAuth,
  CoreError,
  eventIdOf,
  MAX_PREV_EVENTS,
  pickAuthEvents,
  powerLevelOf,
  signEvent,
  stateKeyOf,
  validatePdu,
  type PDU,
} from '../../core/index.js';
import type { EventRecord, UserRecord, WriteTxn } from '../../storage/types.js';
import type { HomeserverContext } from '../context.js';
import { badJson, forbidden, invalidParam, MatrixError, tooLarge } from '../http/errors.js';
import { INVITE_STATE_TYPES, strippedState } from './create-room.js';
import type { RoomState } from './room-state.js';
import type { EventDraft } from './types.js';
import { parseRoomAlias } from './validate.js';

const MAX_DEPTH = Number.MAX_SAFE_INTEGER;

/** An event built and signed, not yet stored. */
export interface Prepared {
  eventId: string;
  /** The event as it will be stored: signed, `unsigned` included, no `event_id`. */
  event: PDU;
  /** The auth rules' view: `event_id` attached, no `unsigned`. */
  pdu: PDU;
  /** `stateKeyOf(type, state_key)` for state events. */
  key?: string;
  depth: number;
}

/** Maps core failures while building an event to the client-facing error. */
export function coreToMatrix(error: unknown): unknown {
  if (!(error instanceof CoreError)) return error;
  if (error.code === 'TOO_LARGE') return tooLarge(`Event too large: ${error.message}`);
  if (error.code === 'MALFORMED_EVENT' || error.code === 'NOT_CANONICAL') return badJson(error.message);
  return error;
}

/** Stripped state an invitee sees before joining, with the inviter's member event. */
export function inviteRoomState(room: RoomState, inviter: string): unknown[] {
  const out: unknown[] = [];
  for (const type of INVITE_STATE_TYPES) {
    const entry = room.get(type, '');
    if (entry) out.push(strippedState(entry.pdu));
  }
  const inviterMember = room.get('m.room.member', inviter);
  if (inviterMember) out.push(strippedState(inviterMember.pdu));
  return out;
}

/** Chooses parents: the deepest forward extremities, at most the spec's 20. */
export function pickPrevEvents(room: RoomState): string[] {
  const tips = [...room.extremities];
  if (tips.length > MAX_PREV_EVENTS) tips.sort((a, b) => b[1] - a[1]);
  return tips.slice(0, MAX_PREV_EVENTS).map(([id]) => id);
}

/** Builds and signs a local event on top of the room's current extremities and state. */
export async function buildEvent(
  ctx: HomeserverContext,
  room: RoomState,
  sender: string,
  draft: EventDraft,
  redacts?: string,
  unsigned?: Record<string, unknown>,
): Promise<Prepared> {
  const event = draftEvent(ctx, room, sender, draft, redacts);
  let extra = unsigned;
  if (draft.stateKey !== undefined) {
    const replaced = room.get(draft.type, draft.stateKey);
    if (replaced) {
      extra = {
        ...extra,
        prev_content: replaced.pdu.content,
        prev_sender: replaced.pdu.sender,
        replaces_state: replaced.record.eventId,
      };
    }
  }
  return signPrepared(ctx, event, room.version, extra);
}

/**
 * The unsigned event a draft becomes on top of the room's current extremities and state: prev_events,
 * depth, auth_events (also what make_join / make_leave hand a remote server to sign).
 */
export function draftEvent(ctx: HomeserverContext, room: RoomState, sender: string, draft: EventDraft, redacts?: string): PDU {
  const prevEvents = pickPrevEvents(room);
  let depth = 0;
  for (const id of prevEvents) depth = Math.max(depth, room.extremities.get(id) ?? 0);
  const content = { ...draft.content };
  const event: PDU = {
    room_id: room.roomId,
    sender,
    type: draft.type,
    content,
    origin_server_ts: ctx.clock.now(),
    depth: Math.min(depth + 1, MAX_DEPTH),
    prev_events: prevEvents,
    auth_events: [],
  };
  if (draft.stateKey !== undefined) event.state_key = draft.stateKey;
  if (redacts !== undefined) {
    // v11+ carry the target in content only; v10 at the top level (Synapse does the same).
    if (room.rules.redactsInContent) content.redacts = redacts;
    else event.redacts = redacts;
  }
  for (const [type, stateKey] of authEventTypesFor(event, room.rules)) {
    const found = room.get(type, stateKey);
    if (found) event.auth_events.push(found.record.eventId);
  }
  return event;
}

/** Hashes, signs, checks format and size, and computes the event ID. */
export async function signPrepared(ctx: HomeserverContext, event: PDU, roomVersion: string, unsigned?: Record<string, unknown>): Promise<Prepared> {
  let signed: PDU;
  try {
    signed = await signEvent(event, ctx.signer, roomVersion);
    validatePdu(signed, roomVersion);
  } catch (error) {
    throw coreToMatrix(error);
  }
  const eventId = eventIdOf(signed, roomVersion);
  return {
    eventId,
    event: unsigned ? { ...signed, unsigned } : signed,
    pdu: { ...signed, event_id: eventId },
    key: typeof signed.state_key === 'string' ? stateKeyOf(signed.type, signed.state_key) : undefined,
    depth: signed.depth ?? 0,
  };
}

/** Checks a local event against the room's current state; 403 with the rule's reason if denied. */
export function authorise(room: RoomState, prepared: Prepared): void {
  const result = checkEventAuth(prepared.pdu, pickAuthEvents(prepared.pdu, room.lookup, room.rules), room.version);
  if (!result.allowed) throw forbidden(result.reason);
}


/**
 * The local redaction rules: the target must be in this room, must not be
 * the create or server ACL event, and the sender needs the redact level or
 * must have sent the target. Returns the target to mark redacted (none if it
 * is unknown here or already redacted).
 */
export async function redactionToApply(t: WriteTxn, room: RoomState, prepared: Prepared, targetId: string): Promise<EventRecord | undefined> {
  const target = await t.events.get(targetId);
  if (!target) return undefined;
  if (target.roomId !== room.roomId) throw invalidParam('Cannot redact event from a different room');
  if (target.event.type === 'm.room.create') throw forbidden('Redacting create events is not permitted');
  if (target.event.type === 'm.room.server_acl') throw forbidden('Redacting server ACL events is not permitted');
  const sender = prepared.pdu.sender;
  const level = powerLevelOf(sender, room.powerLevels, room.createEvent, room.rules);
  if (level < actionPowerLevel('redact', room.powerLevels) && target.event.sender !== sender) {
    throw forbidden("You don't have permission to redact events");
  }
  return target.redactedBy ? undefined : target;
}

/** A local canonical alias event may only name aliases that point to this room (400 M_BAD_ALIAS otherwise). */
export async function checkCanonicalAlias(t: WriteTxn, room: RoomState, pdu: PDU): Promise<void> {
  const previous = room.get('m.room.canonical_alias', '')?.pdu.content ?? {};
  const { alias, alt_aliases: alt } = pdu.content;
  if (alias !== undefined && typeof alias !== 'string') throw invalidParam('The alias must be of type string.');
  if (alt !== undefined && !Array.isArray(alt)) throw invalidParam('The alt_aliases property must be a list.');
  const toCheck: unknown[] = [];
  if (typeof alias === 'string' && alias !== previous.alias) toCheck.push(alias);
  const before = new Set(Array.isArray(previous.alt_aliases) ? previous.alt_aliases : []);
  for (const entry of alt ?? []) if (!before.has(entry)) toCheck.push(entry);
  for (const entry of toCheck) {
    if (typeof entry !== 'string') throw invalidParam('Each alt_alias must be of type string.');
    const parsed = parseRoomAlias(entry);
    const found = parsed ? await t.aliases.get(entry) : undefined;
    if (!found || found.roomId !== room.roomId) {
      throw new MatrixError(400, 'M_BAD_ALIAS', `Room alias ${entry} does not point to the room`);
    }
  }
}





/** A record for an event built but not yet stored (createRoom's in-memory room). */
export function pendingRecord(p: Prepared, roomId: string): EventRecord {
  return { eventId: p.eventId, roomId, event: p.event, depth: p.depth, outlier: false };
}

export function addProfile(content: Record<string, unknown>, profile: UserRecord | undefined): void {
  if (!profile) return;
  if (!('displayname' in content) && profile.displayname !== undefined) content.displayname = profile.displayname;
  if (!('avatar_url' in content) && profile.avatarUrl !== undefined) content.avatar_url = profile.avatarUrl;
}

/**
 * Helpers the rooms routes share: checking path parameters (room IDs, event
 * IDs, aliases), resolving an alias to a room, deciding which room state a
 * user may read (current state when joined or the room is world readable,
 * the state at their departure when they left), and formatting stored events
 * as client events with their redactions.
 */
import { isValidServerName, stateKeyOf, utf8Length } from '../../../core/index.js';
import type { EventRecord, ReadTxn } from '../../../storage/types.js';
import { toClientEvent, type ClientEvent } from '../../events/client-format.js';
import { forbidden, invalidParam, notFound } from '../../http/errors.js';
import { parseRoomAlias, type ParsedAlias } from '../../rooms/validate.js';
import { roomIdParam } from '../../http/params.js';
import type { HomeserverServices } from '../../services.js';

/** A `{eventId}` path parameter; M_INVALID_PARAM unless it looks like an event ID. */
export function eventIdParam(value: string | undefined): string {
  if (typeof value !== 'string' || !value.startsWith('$') || value.length < 2 || utf8Length(value) > 255) {
    throw invalidParam(`Invalid event ID: ${value}`);
  }
  return value;
}

/** A `{roomAlias}` path parameter; M_INVALID_PARAM unless it is `#local:server`. */
export function aliasParam(value: string | undefined): ParsedAlias {
  const parsed = parseRoomAlias(value);
  if (!parsed) throw invalidParam('Room alias invalid');
  return parsed;
}

/** The room a `{roomIdOrAlias}` names; aliases must be known here (remote lookups come with federation). */
export async function resolveRoomIdOrAlias(services: HomeserverServices, value: string | undefined): Promise<string> {
  if (typeof value === 'string' && value.startsWith('#')) {
    const parsed = aliasParam(value);
    const record = await services.ctx.storage.read((txn) => txn.aliases.get(parsed.alias));
    if (!record) throw notFound(`Room alias ${parsed.alias} not found`);
    return record.roomId;
  }
  return roomIdParam(value);
}

/** `via`/`server_name` query values are accepted (and ignored until federation); bad names are refused. */
export function checkServerNames(query: URLSearchParams): void {
  for (const name of [...query.getAll('via'), ...query.getAll('server_name')]) {
    if (!isValidServerName(name)) throw invalidParam(`Invalid server name: ${name}`);
  }
}

/**
 * The state a user may read in a room, as (stateKeyOf -> record): current
 * state if they are joined or the room is world readable, the state after
 * their own leave or ban if they departed; 403 otherwise (as Synapse says it).
 */
export async function readableState(services: HomeserverServices, roomId: string, userId: string): Promise<Map<string, EventRecord>> {
  const { rooms, ctx } = services;
  const current = await rooms.currentState(roomId);
  const denied = () => forbidden(`User ${userId} not in room ${roomId}, and room previews are disabled`);
  if (!current) throw denied();
  const member = current.get(stateKeyOf('m.room.member', userId));
  const membership = member?.pdu.content.membership;
  const visibility = current.get(stateKeyOf('m.room.history_visibility', ''))?.pdu.content.history_visibility;
  if (membership === 'join' || visibility === 'world_readable') {
    return new Map([...current].map(([key, entry]) => [key, entry.record]));
  }
  if (member && (membership === 'leave' || membership === 'ban')) {
    return ctx.storage.read((txn) => stateRecordsAfter(txn, member.record.eventId));
  }
  throw denied();
}

/** The state after an event, as records. */
export async function stateRecordsAfter(txn: ReadTxn, eventId: string): Promise<Map<string, EventRecord>> {
  const groups = await txn.eventState.get(eventId);
  if (!groups) return new Map();
  const ids = await txn.stateGroups.load(groups.after);
  const records = await txn.events.getMany([...ids.values()]);
  const out = new Map<string, EventRecord>();
  for (const [key, id] of ids) {
    const record = records.get(id);
    if (record) out.set(key, record);
  }
  return out;
}

/** Stored events as client events, redactions applied (one read for all the redaction events). */
export async function formatEvents(
  services: HomeserverServices,
  records: readonly EventRecord[],
  requester?: { userId: string; deviceId: string },
): Promise<ClientEvent[]> {
  const { ctx, rooms } = services;
  const redactionIds = records.map((r) => r.redactedBy).filter((id): id is string => id !== undefined);
  const redactions = redactionIds.length ? await ctx.storage.read((txn) => txn.events.getMany(redactionIds)) : new Map<string, EventRecord>();
  const versions = new Map<string, string>();
  const now = ctx.clock.now();
  const out: ClientEvent[] = [];
  for (const record of records) {
    let roomVersion = versions.get(record.roomId);
    if (roomVersion === undefined) {
      roomVersion = (await rooms.roomVersion(record.roomId)) ?? '12';
      versions.set(record.roomId, roomVersion);
    }
    const redaction = record.redactedBy ? redactions.get(record.redactedBy) : undefined;
    const redactedBecause = redaction ? toClientEvent(redaction, { now, roomVersion }) : undefined;
    const transactionId = requester && rooms.transactionIdFor(record.eventId, requester.userId, requester.deviceId);
    out.push(toClientEvent(record, { now, roomVersion, redactedBecause, transactionId }));
  }
  return out;
}

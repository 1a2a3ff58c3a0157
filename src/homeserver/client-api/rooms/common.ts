/**
 * Helpers the rooms routes share: checking path parameters (room IDs, event
 * IDs, aliases), resolving an alias to a room, reading a room under the
 * access module's gate (access/room-access.ts decides who may read what), and
 * formatting stored events as client events with their redactions.
 */
import { isValidServerName, utf8Length, type StateMap } from '../../../core/index.js';
import type { EventRecord } from '../../../storage/types.js';
import { checkUserMayRead, type GateOptions, type ReadGrant } from '../../access/room-access.js';
import { RoomReader } from '../../sync/room-reader.js';
import { toClientEvent, type ClientEvent } from '../../events/client-format.js';
import { invalidParam, notFound } from '../../http/errors.js';
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

/** The room a `{roomIdOrAlias}` names; see resolveRoomTarget. */
export async function resolveRoomIdOrAlias(services: HomeserverServices, value: string | undefined): Promise<string> {
  return (await resolveRoomTarget(services, value)).roomId;
}

/**
 * The room a `{roomIdOrAlias}` names, and for another server's alias the servers its server says are in
 * the room (asked over federation, query/directory: where a join should go).
 */
export async function resolveRoomTarget(services: HomeserverServices, value: string | undefined): Promise<{ roomId: string; servers: string[] }> {
  if (typeof value === 'string' && value.startsWith('#')) {
    const parsed = aliasParam(value);
    const record = await services.ctx.storage.read((txn) => txn.aliases.get(parsed.alias));
    if (record) return { roomId: record.roomId, servers: [] };
    if (parsed.server === services.ctx.serverName) throw notFound(`Room alias ${parsed.alias} not found`);
    return services.federation.queries.directory(parsed.alias, parsed.server);
  }
  return { roomId: roomIdParam(value), servers: [] };
}

/** `via`/`server_name` query values are accepted (and ignored until federation); bad names are refused. */
export function checkServerNames(query: URLSearchParams): void {
  for (const name of [...query.getAll('via'), ...query.getAll('server_name')]) {
    if (!isValidServerName(name)) throw invalidParam(`Invalid server name: ${name}`);
  }
}

/**
 * Runs `fn` over one storage read with the user's grant for the room
 * (access/room-access.ts checkUserMayRead: 403 M_FORBIDDEN unless they may read it).
 */
export async function withReadGrant<T>(
  services: HomeserverServices,
  roomId: string,
  userId: string,
  fn: (reader: RoomReader, grant: ReadGrant) => Promise<T>,
  options?: GateOptions,
): Promise<T> {
  const { sync, ctx } = services;
  return sync.readRooms(async (txn) => {
    const reader = new RoomReader(txn, sync.caches, ctx.clock.now());
    return fn(reader, await checkUserMayRead(reader, roomId, userId, options));
  });
}

/** The records of a state map (missing events left out), keyed as the map is. */
export async function stateRecords(reader: RoomReader, state: StateMap): Promise<Map<string, EventRecord>> {
  const records = await reader.getEvents(state.values());
  const out = new Map<string, EventRecord>();
  for (const [key, id] of state) {
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

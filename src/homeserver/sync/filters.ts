/**
 * Filters (spec "Filtering"): parsing and validating the JSON a client gives
 * (an uploaded filter, an inline `filter=` on /sync, a RoomEventFilter on
 * /messages and /context), and applying it to events. Parsing checks shapes
 * like Synapse's filter schema does (unknown keys allowed for forward
 * compatibility; wrong types and malformed IDs refused with M_BAD_JSON) and
 * compiles `types`/`not_types` patterns, where `*` matches any run of
 * characters. A `not_*` list wins over its positive list, and an absent
 * positive list allows everything while an empty one allows nothing.
 */
import { isValidUserId, type JsonObject } from '../../core/index.js';
import { badJson } from '../http/errors.js';
import { parseJsonParam, type JsonLimits } from '../http/json-ingress.js';

export interface EventFilterJson {
  limit?: number;
  types?: string[];
  not_types?: string[];
  senders?: string[];
  not_senders?: string[];
}

export interface RoomEventFilterJson extends EventFilterJson {
  rooms?: string[];
  not_rooms?: string[];
  contains_url?: boolean;
  lazy_load_members?: boolean;
  include_redundant_members?: boolean;
  unread_thread_notifications?: boolean;
}

export interface RoomFilterJson {
  rooms?: string[];
  not_rooms?: string[];
  include_leave?: boolean;
  timeline?: RoomEventFilterJson;
  state?: RoomEventFilterJson;
  ephemeral?: RoomEventFilterJson;
  account_data?: RoomEventFilterJson;
}

export interface FilterJson {
  event_fields?: string[];
  event_format?: 'client' | 'federation';
  presence?: EventFilterJson;
  account_data?: EventFilterJson;
  room?: RoomFilterJson;
}

/** What filters look at: events, ephemeral events and account data alike. */
export interface Filterable {
  type: string;
  sender?: string;
  room_id?: string;
  content?: unknown;
}

/** Largest timeline/page size a filter may ask for; larger values are clamped like Synapse does. */
export const MAX_FILTER_LIMIT = 1000;

// ---------------------------------------------------------------------------
// Parsing

type Path = string;

function fail(path: Path, what: string): never {
  throw badJson(`Invalid filter: ${path} ${what}`);
}

function asObject(value: unknown, path: Path): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(path, 'must be an object');
  return value as Record<string, unknown>;
}

function stringArray(value: unknown, path: Path, check?: (s: string) => boolean, what = 'a string'): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) fail(path, 'must be an array');
  for (const item of value) {
    if (typeof item !== 'string' || (check && !check(item))) fail(path, `must contain only ${what}s`);
  }
  return value as string[];
}

function bool(value: unknown, path: Path): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') fail(path, 'must be a boolean');
  return value;
}

function limitOf(value: unknown, path: Path): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) fail(path, 'must be a non-negative number');
  return Math.min(Math.floor(value), MAX_FILTER_LIMIT);
}

const isRoomId = (s: string) => s.length > 1 && s.length <= 255 && s.startsWith('!');
const isUserId = (s: string) => isValidUserId(s);

function parseEventFilter(value: unknown, path: Path): EventFilterJson {
  const o = asObject(value, path);
  const out: EventFilterJson = {};
  const limit = limitOf(o.limit, `${path}.limit`);
  if (limit !== undefined) out.limit = limit;
  const types = stringArray(o.types, `${path}.types`);
  if (types) out.types = types;
  const notTypes = stringArray(o.not_types, `${path}.not_types`);
  if (notTypes) out.not_types = notTypes;
  const senders = stringArray(o.senders, `${path}.senders`, isUserId, 'user ID');
  if (senders) out.senders = senders;
  const notSenders = stringArray(o.not_senders, `${path}.not_senders`, isUserId, 'user ID');
  if (notSenders) out.not_senders = notSenders;
  return out;
}

function parseRoomEventFilterAt(value: unknown, path: Path): RoomEventFilterJson {
  const o = asObject(value, path);
  const out: RoomEventFilterJson = parseEventFilter(o, path);
  const rooms = stringArray(o.rooms, `${path}.rooms`, isRoomId, 'room ID');
  if (rooms) out.rooms = rooms;
  const notRooms = stringArray(o.not_rooms, `${path}.not_rooms`, isRoomId, 'room ID');
  if (notRooms) out.not_rooms = notRooms;
  for (const key of ['contains_url', 'lazy_load_members', 'include_redundant_members', 'unread_thread_notifications'] as const) {
    const v = bool(o[key], `${path}.${key}`);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** Checks and normalises a RoomEventFilter (/messages, /context); throws M_BAD_JSON. */
export function parseRoomEventFilter(value: unknown): RoomEventFilterJson {
  return parseRoomEventFilterAt(value, 'filter');
}

/** Checks and normalises a sync Filter (uploaded or inline); throws M_BAD_JSON. */
export function parseFilter(value: unknown): FilterJson {
  const o = asObject(value, 'filter');
  const out: FilterJson = {};
  const fields = stringArray(o.event_fields, 'event_fields');
  if (fields) out.event_fields = fields;
  if (o.event_format !== undefined) {
    if (o.event_format !== 'client' && o.event_format !== 'federation') fail('event_format', "must be 'client' or 'federation'");
    out.event_format = o.event_format;
  }
  if (o.presence !== undefined) out.presence = parseEventFilter(o.presence, 'presence');
  if (o.account_data !== undefined) out.account_data = parseEventFilter(o.account_data, 'account_data');
  if (o.room !== undefined) {
    const r = asObject(o.room, 'room');
    const room: RoomFilterJson = {};
    const rooms = stringArray(r.rooms, 'room.rooms', isRoomId, 'room ID');
    if (rooms) room.rooms = rooms;
    const notRooms = stringArray(r.not_rooms, 'room.not_rooms', isRoomId, 'room ID');
    if (notRooms) room.not_rooms = notRooms;
    const includeLeave = bool(r.include_leave, 'room.include_leave');
    if (includeLeave !== undefined) room.include_leave = includeLeave;
    for (const key of ['timeline', 'state', 'ephemeral', 'account_data'] as const) {
      if (r[key] !== undefined) room[key] = parseRoomEventFilterAt(r[key], `room.${key}`);
    }
    out.room = room;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Matching

const patternCache = new Map<string, RegExp>();

/** Whether an event type matches a filter pattern (`*` is a wildcard). */
export function typeMatches(pattern: string, type: string): boolean {
  if (!pattern.includes('*')) return pattern === type;
  let re = patternCache.get(pattern);
  if (!re) {
    const source = pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    re = new RegExp(`^${source}$`, 's');
    if (patternCache.size > 1000) patternCache.clear();
    patternCache.set(pattern, re);
  }
  return re.test(type);
}

/** A compiled EventFilter or RoomEventFilter. */
export class EventFilter {
  readonly limit: number | undefined;
  readonly lazyLoadMembers: boolean;
  readonly includeRedundantMembers: boolean;
  private readonly types?: string[];
  private readonly notTypes: string[];
  private readonly senders?: Set<string>;
  private readonly notSenders: Set<string>;
  private readonly rooms?: Set<string>;
  private readonly notRooms: Set<string>;
  private readonly containsUrl?: boolean;

  constructor(json: RoomEventFilterJson = {}) {
    this.limit = json.limit;
    this.lazyLoadMembers = json.lazy_load_members ?? false;
    this.includeRedundantMembers = json.include_redundant_members ?? false;
    this.types = json.types;
    this.notTypes = json.not_types ?? [];
    this.senders = json.senders ? new Set(json.senders) : undefined;
    this.notSenders = new Set(json.not_senders ?? []);
    this.rooms = json.rooms ? new Set(json.rooms) : undefined;
    this.notRooms = new Set(json.not_rooms ?? []);
    this.containsUrl = json.contains_url;
  }

  /** Whether the filter lets nothing through (lets /sync skip work). */
  get blocksAll(): boolean {
    return this.types?.length === 0 || this.notTypes.includes('*') || this.senders?.size === 0 || this.rooms?.size === 0;
  }

  /** Whether the filter lets this room's events through at all. */
  allowsRoom(roomId: string): boolean {
    if (this.notRooms.has(roomId)) return false;
    return !this.rooms || this.rooms.has(roomId);
  }

  matches(event: Filterable): boolean {
    if (event.room_id !== undefined && !this.allowsRoom(event.room_id)) return false;
    if (event.sender !== undefined) {
      if (this.notSenders.has(event.sender)) return false;
      if (this.senders && !this.senders.has(event.sender)) return false;
    } else if (this.senders) {
      return false;
    }
    for (const pattern of this.notTypes) if (typeMatches(pattern, event.type)) return false;
    if (this.types && !this.types.some((pattern) => typeMatches(pattern, event.type))) return false;
    if (this.containsUrl !== undefined) {
      const content = event.content;
      const hasUrl = content !== null && typeof content === 'object' && typeof (content as { url?: unknown }).url === 'string';
      if (hasUrl !== this.containsUrl) return false;
    }
    return true;
  }

  filter<T extends Filterable>(events: readonly T[]): T[] {
    return events.filter((e) => this.matches(e));
  }
}

/** Default number of timeline events per room in /sync. */
export const DEFAULT_TIMELINE_LIMIT = 10;

/** A compiled sync Filter. */
export class SyncFilter {
  readonly json: FilterJson;
  /** Room-level rooms/not_rooms. */
  readonly room: EventFilter;
  readonly timeline: EventFilter;
  readonly state: EventFilter;
  readonly ephemeral: EventFilter;
  readonly roomAccountData: EventFilter;
  readonly accountData: EventFilter;
  readonly presence: EventFilter;
  readonly includeLeave: boolean;
  readonly eventFields: string[] | undefined;
  readonly eventFormat: 'client' | 'federation';

  constructor(json: FilterJson = {}) {
    this.json = json;
    const room = json.room ?? {};
    this.room = new EventFilter({ rooms: room.rooms, not_rooms: room.not_rooms });
    this.timeline = new EventFilter(room.timeline);
    this.state = new EventFilter(room.state);
    this.ephemeral = new EventFilter(room.ephemeral);
    this.roomAccountData = new EventFilter(room.account_data);
    this.accountData = new EventFilter(json.account_data);
    this.presence = new EventFilter(json.presence);
    this.includeLeave = room.include_leave ?? false;
    this.eventFields = json.event_fields;
    this.eventFormat = json.event_format ?? 'client';
  }

  get timelineLimit(): number {
    return this.timeline.limit ?? DEFAULT_TIMELINE_LIMIT;
  }

  get lazyLoadMembers(): boolean {
    return this.state.lazyLoadMembers;
  }

  get includeRedundantMembers(): boolean {
    return this.state.includeRedundantMembers;
  }

  /** Whether the room is wanted at all (room.rooms / room.not_rooms). */
  allowsRoom(roomId: string): boolean {
    return this.room.allowsRoom(roomId);
  }
}

// ---------------------------------------------------------------------------
// event_fields

/** Splits "content.body" into ["content", "body"], honouring `\.` as a literal dot. */
function splitFieldPath(path: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === '\\' && (path[i + 1] === '.' || path[i + 1] === '\\')) {
      current += path[i + 1];
      i++;
    } else if (c === '.') {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

/** Keeps only the listed fields of an event (spec `event_fields`); nested paths with dots. */
export function onlyEventFields<T extends object>(event: T, fields: readonly string[]): Partial<T> {
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const path = splitFieldPath(field);
    let source: unknown = event;
    for (const part of path) {
      if (source === null || typeof source !== 'object' || Array.isArray(source) || !(part in source)) {
        source = undefined;
        break;
      }
      source = (source as Record<string, unknown>)[part];
    }
    if (source === undefined) continue;
    let target = out;
    for (let i = 0; i < path.length - 1; i++) {
      const next = target[path[i]];
      if (next === null || typeof next !== 'object') target[path[i]] = {};
      target = target[path[i]] as Record<string, unknown>;
    }
    target[path[path.length - 1]] = source;
  }
  return out as Partial<T>;
}

/** Parses the `filter` query parameter of /messages or /context (URL-decoded JSON). */
export function parseRoomEventFilterParam(raw: string | null, limits?: Partial<JsonLimits>): EventFilter {
  if (raw === null || raw === '') return new EventFilter();
  const parsed = parseJsonParam(raw, limits, 'filter');
  return new EventFilter(parseRoomEventFilter(parsed as JsonObject));
}

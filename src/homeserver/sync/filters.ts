/**
 * Filters (spec "Filtering"): the one grammar for every filter a client
 * gives — an uploaded filter (POST /user/{userId}/filter, checked here before
 * accounts/filters.ts stores it), an inline `filter=` on /sync, a
 * RoomEventFilter on /messages and /context — and applying it to events.
 * Upload and /sync use this same parser, as Synapse validates an upload with
 * the code that applies it (synapse/api/filtering.py), so a filter that is
 * accepted can always be applied.
 *
 * Parsing checks shapes like Synapse's filter schema (wrong types and
 * malformed IDs refused with 400 M_BAD_JSON naming the field) and returns the
 * normalised form: known keys checked and clamped, unknown keys kept as given
 * for forward compatibility (matrix-js-sdk sends `related_by_rel_types` and
 * unstable names, and compares what GET gives back with what it uploaded).
 * Matching: `*` in `types`/`not_types` matches any run of characters; a
 * `not_*` list wins over its positive list; an absent positive list allows
 * everything while an empty one allows nothing.
 *
 * Bounds. A filter is applied to every event of every /sync, so its size is
 * work the server repeats; each bound is generous for real clients (Element
 * and matrix-js-sdk send a handful of entries) and is refused with 400
 * M_BAD_JSON — Synapse's answer for any filter outside its schema — naming
 * the field:
 * - `types`, `not_types`, `event_fields`: at most 100 entries
 *   (FILTER_LIST_BOUNDS);
 * - `senders`, `not_senders`, `rooms`, `not_rooms`: at most 1000 entries;
 * - every string: at most 255 characters (MAX_FILTER_STRING_LENGTH, the
 *   spec's limit on IDs and event types: a longer ID, or pattern without
 *   `*`, could match nothing);
 * - the whole normalised filter: at most 65536 characters of JSON
 *   (MAX_FILTER_JSON_LENGTH), which bounds parsing, storage and the compiled
 *   filters /sync caches;
 * - `limit`: clamped to 1000 (MAX_FILTER_LIMIT), not refused.
 * With these, matching one event costs at most 200 patterns, each in time
 * linear in the pattern and the type (TypePattern: no regular expression is
 * built from input).
 */
import { isValidUserId } from '../../core/index.js';
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

/** Largest timeline/page size a filter may ask for; larger values are clamped like Synapse does. @default 1000 */
export const MAX_FILTER_LIMIT = 1000;

/**
 * Most entries in each list of a filter. Type patterns and field paths cost
 * work per event, so they get fewer; ID lists are set lookups, and a client may
 * list many rooms or ignored users.
 */
export const FILTER_LIST_BOUNDS = {
  /** @default 100 */
  types: 100,
  /** @default 100 */
  not_types: 100,
  /** @default 100 */
  event_fields: 100,
  /** @default 1000 */
  senders: 1000,
  /** @default 1000 */
  not_senders: 1000,
  /** @default 1000 */
  rooms: 1000,
  /** @default 1000 */
  not_rooms: 1000,
} as const;

/** Longest string in any list of a filter, in UTF-16 code units. @default 255 */
export const MAX_FILTER_STRING_LENGTH = 255;

/** Longest normalised filter, in characters of its JSON. @default 65536 */
export const MAX_FILTER_JSON_LENGTH = 65_536;

// ---------------------------------------------------------------------------
// Parsing

type Path = string;
type ListKey = keyof typeof FILTER_LIST_BOUNDS;

function fail(path: Path, what: string): never {
  throw badJson(`Invalid filter: ${path} ${what}`);
}

function asObject(value: unknown, path: Path): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(path, 'must be an object');
  return value as Record<string, unknown>;
}

/** The input's own value under a key the grammar defines (never one inherited). */
function own(o: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(o, key) ? o[key] : undefined;
}

/** Copies the keys this grammar does not know, as given; `defineProperty` so that no key (`__proto__`) is special. */
function keepUnknown(from: Record<string, unknown>, to: object, known: ReadonlySet<string>): void {
  for (const key of Object.keys(from)) {
    if (known.has(key)) continue;
    Object.defineProperty(to, key, { value: from[key], enumerable: true, writable: true, configurable: true });
  }
}

function stringList(o: Record<string, unknown>, key: ListKey, path: Path, check?: (s: string) => boolean, what = 'string'): string[] | undefined {
  const value = own(o, key);
  if (value === undefined) return undefined;
  const at = `${path}${key}`;
  if (!Array.isArray(value)) fail(at, 'must be an array');
  // The length first: a 40,000-entry list is refused without looking at its entries.
  if (value.length > FILTER_LIST_BOUNDS[key]) fail(at, `must have at most ${FILTER_LIST_BOUNDS[key]} entries`);
  const out: string[] = [];
  for (let i = 0; i < value.length; i++) {
    const item: unknown = value[i];
    if (typeof item !== 'string' || (check && !check(item))) fail(at, `must contain only ${what}s`);
    if (item.length > MAX_FILTER_STRING_LENGTH) fail(at, `must contain only strings of at most ${MAX_FILTER_STRING_LENGTH} characters`);
    out.push(item);
  }
  return out;
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

const isRoomId = (s: string) => s.length > 1 && s.startsWith('!');
const isUserId = (s: string) => isValidUserId(s);

const EVENT_FILTER_KEYS = ['limit', 'types', 'not_types', 'senders', 'not_senders'] as const;
const ROOM_EVENT_FILTER_FLAGS = ['contains_url', 'lazy_load_members', 'include_redundant_members', 'unread_thread_notifications'] as const;
const KNOWN_EVENT_FILTER = new Set<string>(EVENT_FILTER_KEYS);
const KNOWN_ROOM_EVENT_FILTER = new Set<string>([...EVENT_FILTER_KEYS, 'rooms', 'not_rooms', ...ROOM_EVENT_FILTER_FLAGS]);
const KNOWN_ROOM_FILTER = new Set(['rooms', 'not_rooms', 'include_leave', 'timeline', 'state', 'ephemeral', 'account_data']);
const KNOWN_FILTER = new Set(['event_fields', 'event_format', 'presence', 'account_data', 'room']);

/** `path` is the prefix of the keys' names in messages: '' or 'room.timeline.'. */
function eventFilterFields(o: Record<string, unknown>, path: Path): EventFilterJson {
  const out: EventFilterJson = {};
  const limit = limitOf(own(o, 'limit'), `${path}limit`);
  if (limit !== undefined) out.limit = limit;
  const types = stringList(o, 'types', path);
  if (types) out.types = types;
  const notTypes = stringList(o, 'not_types', path);
  if (notTypes) out.not_types = notTypes;
  const senders = stringList(o, 'senders', path, isUserId, 'user ID');
  if (senders) out.senders = senders;
  const notSenders = stringList(o, 'not_senders', path, isUserId, 'user ID');
  if (notSenders) out.not_senders = notSenders;
  return out;
}

function parseEventFilter(value: unknown, name: string): EventFilterJson {
  const o = asObject(value, name);
  const out = eventFilterFields(o, `${name}.`);
  keepUnknown(o, out, KNOWN_EVENT_FILTER);
  return out;
}

function parseRoomEventFilterAt(value: unknown, name: string): RoomEventFilterJson {
  const o = asObject(value, name || 'filter');
  const path = name === '' ? '' : `${name}.`;
  const out: RoomEventFilterJson = eventFilterFields(o, path);
  const rooms = stringList(o, 'rooms', path, isRoomId, 'room ID');
  if (rooms) out.rooms = rooms;
  const notRooms = stringList(o, 'not_rooms', path, isRoomId, 'room ID');
  if (notRooms) out.not_rooms = notRooms;
  for (const key of ROOM_EVENT_FILTER_FLAGS) {
    const v = bool(own(o, key), `${path}${key}`);
    if (v !== undefined) out[key] = v;
  }
  keepUnknown(o, out, KNOWN_ROOM_EVENT_FILTER);
  return out;
}

/** Refuses a normalised filter whose JSON is longer than MAX_FILTER_JSON_LENGTH (or cannot be written as JSON at all). */
function checkTotal<T>(filter: T): T {
  let length: number;
  try {
    length = JSON.stringify(filter).length;
  } catch {
    fail('filter', 'cannot be written back as JSON (nested too deeply?)');
  }
  if (length > MAX_FILTER_JSON_LENGTH) fail('filter', `must be at most ${MAX_FILTER_JSON_LENGTH} characters of JSON`);
  return filter;
}

/** Checks and normalises a RoomEventFilter (/messages, /context); throws M_BAD_JSON. */
export function parseRoomEventFilter(value: unknown): RoomEventFilterJson {
  return checkTotal(parseRoomEventFilterAt(value, ''));
}

/**
 * Checks and normalises a sync Filter (uploaded, stored or inline); throws
 * M_BAD_JSON naming the first field that breaks the grammar or a bound.
 * Idempotent: the normalised form parses to itself, so what is stored is
 * what /sync applies.
 */
export function parseFilter(value: unknown): FilterJson {
  const o = asObject(value, 'filter');
  const out: FilterJson = {};
  const fields = stringList(o, 'event_fields', '');
  if (fields) out.event_fields = fields;
  const format = own(o, 'event_format');
  if (format !== undefined) {
    if (format !== 'client' && format !== 'federation') fail('event_format', "must be 'client' or 'federation'");
    out.event_format = format;
  }
  const presence = own(o, 'presence');
  if (presence !== undefined) out.presence = parseEventFilter(presence, 'presence');
  const accountData = own(o, 'account_data');
  if (accountData !== undefined) out.account_data = parseEventFilter(accountData, 'account_data');
  const roomValue = own(o, 'room');
  if (roomValue !== undefined) {
    const r = asObject(roomValue, 'room');
    const room: RoomFilterJson = {};
    const rooms = stringList(r, 'rooms', 'room.', isRoomId, 'room ID');
    if (rooms) room.rooms = rooms;
    const notRooms = stringList(r, 'not_rooms', 'room.', isRoomId, 'room ID');
    if (notRooms) room.not_rooms = notRooms;
    const includeLeave = bool(own(r, 'include_leave'), 'room.include_leave');
    if (includeLeave !== undefined) room.include_leave = includeLeave;
    for (const key of ['timeline', 'state', 'ephemeral', 'account_data'] as const) {
      const sub = own(r, key);
      if (sub !== undefined) room[key] = parseRoomEventFilterAt(sub, `room.${key}`);
    }
    keepUnknown(r, room, KNOWN_ROOM_FILTER);
    out.room = room;
  }
  keepUnknown(o, out, KNOWN_FILTER);
  return checkTotal(out);
}

// ---------------------------------------------------------------------------
// Matching

/** KMP failure table: for each prefix of `needle`, the length of its longest proper border. */
function failureTable(needle: string): Int32Array {
  const table = new Int32Array(needle.length);
  let k = 0;
  for (let i = 1; i < needle.length; i++) {
    while (k > 0 && needle.charCodeAt(i) !== needle.charCodeAt(k)) k = table[k - 1]!;
    if (needle.charCodeAt(i) === needle.charCodeAt(k)) k++;
    table[i] = k;
  }
  return table;
}

/** First index >= from where `needle` lies wholly before `to` in `text`, or -1; linear in (to - from) + needle. */
function findIn(text: string, from: number, to: number, needle: string, table: Int32Array): number {
  let k = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    while (k > 0 && c !== needle.charCodeAt(k)) k = table[k - 1]!;
    if (c === needle.charCodeAt(k)) k++;
    if (k === needle.length) return i - k + 1;
  }
  return -1;
}

/**
 * A `types`/`not_types` pattern, compiled once. `*` matches any run of
 * characters (code units), everything else itself. The text between the
 * stars is matched greedily: the part before the first star is a prefix, the
 * part after the last a suffix, and each part in between is found at its
 * leftmost place after the previous one (leftmost is always safe when `*` is
 * the only wildcard). Each search is Knuth-Morris-Pratt and the text is
 * scanned once, so a match costs O(pattern + type) whatever the input — no
 * backtracking RegExp, which `*a*a*a*a*b` froze for 72 s.
 */
export class TypePattern {
  private readonly exact: string | undefined;
  private readonly head: string = '';
  private readonly tail: string = '';
  private readonly middle: { text: string; table: Int32Array }[] = [];

  constructor(readonly pattern: string) {
    const parts = pattern.split('*');
    if (parts.length === 1) {
      this.exact = pattern;
      return;
    }
    this.head = parts[0]!;
    this.tail = parts[parts.length - 1]!;
    for (let i = 1; i < parts.length - 1; i++) {
      const text = parts[i]!;
      if (text !== '') this.middle.push({ text, table: failureTable(text) });
    }
  }

  matches(type: string): boolean {
    if (this.exact !== undefined) return type === this.exact;
    const { head, tail } = this;
    if (type.length < head.length + tail.length || !type.startsWith(head) || !type.endsWith(tail)) return false;
    let at = head.length;
    const end = type.length - tail.length;
    for (const part of this.middle) {
      const found = findIn(type, at, end, part.text, part.table);
      if (found < 0) return false;
      at = found + part.text.length;
    }
    return true;
  }
}

/** Whether an event type matches a filter pattern (`*` is a wildcard). */
export function typeMatches(pattern: string, type: string): boolean {
  return new TypePattern(pattern).matches(type);
}

/** A compiled EventFilter or RoomEventFilter. */
export class EventFilter {
  readonly limit: number | undefined;
  readonly lazyLoadMembers: boolean;
  readonly includeRedundantMembers: boolean;
  private readonly types?: TypePattern[];
  private readonly notTypes: TypePattern[];
  private readonly senders?: Set<string>;
  private readonly notSenders: Set<string>;
  private readonly rooms?: Set<string>;
  private readonly notRooms: Set<string>;
  private readonly containsUrl?: boolean;

  constructor(json: RoomEventFilterJson = {}) {
    this.limit = json.limit;
    this.lazyLoadMembers = json.lazy_load_members ?? false;
    this.includeRedundantMembers = json.include_redundant_members ?? false;
    this.types = json.types?.map((p) => new TypePattern(p));
    this.notTypes = (json.not_types ?? []).map((p) => new TypePattern(p));
    this.senders = json.senders ? new Set(json.senders) : undefined;
    this.notSenders = new Set(json.not_senders ?? []);
    this.rooms = json.rooms ? new Set(json.rooms) : undefined;
    this.notRooms = new Set(json.not_rooms ?? []);
    this.containsUrl = json.contains_url;
  }

  /** Whether the filter lets nothing through (lets /sync skip work). */
  get blocksAll(): boolean {
    return this.types?.length === 0 || this.notTypes.some((p) => p.pattern === '*') || this.senders?.size === 0 || this.rooms?.size === 0;
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
    for (const pattern of this.notTypes) if (pattern.matches(event.type)) return false;
    if (this.types && !this.types.some((pattern) => pattern.matches(event.type))) return false;
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

/** Splits "content.body" into ["content", "body"], honouring `\.` as a literal dot and `\\` as a backslash. */
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

/** The requested paths as a tree: `true` takes the whole value (and covers every longer path below it). */
type FieldTree = Map<string, FieldTree | true>;

const fieldTrees = new WeakMap<readonly string[], FieldTree>();

function fieldTree(fields: readonly string[]): FieldTree {
  let root = fieldTrees.get(fields);
  if (root) return root;
  root = new Map();
  for (const field of fields) {
    const path = splitFieldPath(field);
    let node = root;
    for (let i = 0; i < path.length; i++) {
      const key = path[i]!;
      const below = node.get(key);
      if (below === true) break;
      if (i === path.length - 1) {
        node.set(key, true);
      } else if (below === undefined) {
        const child: FieldTree = new Map();
        node.set(key, child);
        node = child;
      } else {
        node = below;
      }
    }
  }
  fieldTrees.set(fields, root);
  return root;
}

/**
 * The parts of `source` the tree names, or undefined when none is there.
 * Keys come from the client, so they are only read as the source's OWN
 * properties and written with defineProperty into a fresh object: a path
 * through `__proto__` (or `constructor`) is an ordinary key, never a way to
 * the prototype. Nothing of `source` is written to.
 */
function project(source: object, tree: FieldTree): Record<string, unknown> | undefined {
  let out: Record<string, unknown> | undefined;
  for (const [key, below] of tree) {
    if (!Object.hasOwn(source, key)) continue;
    const value: unknown = Object.getOwnPropertyDescriptor(source, key)?.value;
    let picked: unknown;
    if (below === true) picked = value;
    else if (value !== null && typeof value === 'object' && !Array.isArray(value)) picked = project(value, below);
    if (picked === undefined) continue;
    out ??= {};
    Object.defineProperty(out, key, { value: picked, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * Keeps only the listed fields of an event (spec `event_fields`): dotted paths
 * into nested objects, like Synapse's only_fields; a path whose end is missing
 * adds nothing, not even its empty parents.
 */
export function onlyEventFields<T extends object>(event: T, fields: readonly string[]): Partial<T> {
  return (project(event, fieldTree(fields)) ?? {}) as Partial<T>;
}

/** Parses the `filter` query parameter of /messages or /context (URL-decoded JSON). */
export function parseRoomEventFilterParam(raw: string | null, limits?: Partial<JsonLimits>): EventFilter {
  if (raw === null || raw === '') return new EventFilter();
  const parsed = parseJsonParam(raw, limits, 'filter');
  return new EventFilter(parseRoomEventFilter(parsed));
}

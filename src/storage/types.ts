/**
 * The Storage interface: everything a Hometab homeserver keeps (room DAGs,
 * state, accounts, keys, media, the replication outbox), as typed stores
 * reached through transactions. One homeserver operation is one `write`; its
 * subscribers hear about it only after it has committed. Memory, IndexedDB and
 * SQLite implement this interface identically (tests/storage/contract.ts).
 *
 * Stream positions. One counter (`txn.stream`) orders everything /sync reports:
 * timeline events, receipts, account data, to-device messages and device list
 * changes all take their `streamOrdering` from it, so a sync token is one
 * integer. A position P means "everything up to and including P has been seen":
 * windows are half-open, (from, to] going forwards and descending from `from`
 * down to, but excluding, `to` going backwards.
 */
import type { JsonObject, JsonValue, PDU, StateMap } from '../core/index.js';
import type { OnCorruptRow } from './errors.js';

// ---------------------------------------------------------------------------
// Storage and transactions

export interface Storage {
  /** Runs `fn` in one read-only transaction and resolves with its result. */
  read<T>(fn: (txn: ReadTxn) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` in one read-write transaction. If `fn` resolves, its writes commit
   * and then subscribers are told; if it rejects, nothing it wrote remains.
   * Inside `fn` await only this transaction's methods: IndexedDB commits a
   * transaction as soon as no request of it is pending, and the other backends
   * fail such a transaction with TXN_INACTIVE so the mistake shows in Node too.
   */
  write<T>(fn: (txn: WriteTxn) => Promise<T>): Promise<T>;
  /** Calls `listener` after each committed write that changed something; returns the unsubscribe function. */
  subscribe(listener: CommitListener): () => void;
  /**
   * Calls `listener` after each committed write that stored any of what a
   * WriteSummary lists, announced or not, in commit order and before that
   * write's subscribers; returns the unsubscribe function. For caches kept in
   * memory beside the storage (see WriteSummary), so optional: without it a
   * caller keeps no such cache.
   */
  observe?(listener: WriteObserver): () => void;
  /** Waits for running transactions, then releases the backend; later calls reject with CLOSED. */
  close(): Promise<void>;
}

/** What one committed write changed, and the stream position after it. */
export interface Commit {
  position: number;
  changes: readonly Change[];
}

export type CommitListener = (commit: Commit) => void;

/**
 * What one committed write stored that in-memory caches of storage data
 * must follow: a cache filled from reads stays exact by applying these (or
 * dropping what they touch). Records are as now stored; callers must not
 * change them.
 */
export interface WriteSummary {
  /** Event records the write added, promoted or updated, in write order. */
  events: readonly EventRecord[];
  /** Membership records the write set, in write order. */
  memberships: readonly MembershipRecord[];
  /** Access tokens the write revoked, by their at-rest hash (`accessTokenHash`). */
  revokedTokenHashes: readonly string[];
  /** Devices whose one-time or fallback keys the write added, claimed or removed. */
  keyDevices: readonly { userId: string; deviceId: string }[];
}

export type WriteObserver = (summary: WriteSummary) => void;

/** A change worth waking someone for; recorded by the stores that make it. */
export type Change =
  | { kind: 'event'; roomId: string; eventId: string; streamOrdering: number }
  | { kind: 'membership'; roomId: string; userId: string; membership: Membership }
  | { kind: 'accountData'; userId: string; roomId: string; type: string; streamOrdering: number }
  | { kind: 'receipt'; roomId: string; userId: string; streamOrdering: number }
  | { kind: 'toDevice'; userId: string; deviceId: string; streamOrdering: number }
  | { kind: 'deviceList'; userId: string; streamOrdering: number }
  /** `record` as committed: the outbox sender sends it without reading it back. */
  | { kind: 'outbound'; destination: string; record: OutboundRecord };

export interface ReadTxn {
  readonly events: EventsReader;
  readonly timeline: TimelineReader;
  readonly dag: DagReader;
  readonly stateGroups: StateGroupsReader;
  readonly eventState: EventStateReader;
  readonly currentState: CurrentStateReader;
  readonly rooms: RoomsReader;
  readonly directory: DirectoryReader;
  readonly memberships: MembershipsReader;
  readonly aliases: AliasesReader;
  readonly users: UsersReader;
  readonly devices: DevicesReader;
  readonly accessTokens: AccessTokensReader;
  readonly filters: FiltersReader;
  readonly accountData: AccountDataReader;
  readonly receipts: ReceiptsReader;
  readonly deviceKeys: DeviceKeysReader;
  readonly crossSigningKeys: CrossSigningKeysReader;
  readonly oneTimeKeys: OneTimeKeysReader;
  readonly fallbackKeys: FallbackKeysReader;
  readonly toDevice: ToDeviceReader;
  readonly deviceLists: DeviceListsReader;
  readonly media: MediaReader;
  readonly transactionIds: TransactionIdsReader;
  readonly outbound: OutboundReader;
  readonly meta: MetaReader;
  readonly stream: StreamReader;
}

export interface WriteTxn extends ReadTxn {
  readonly events: EventsStore;
  readonly dag: DagStore;
  readonly stateGroups: StateGroupsStore;
  readonly eventState: EventStateStore;
  readonly currentState: CurrentStateStore;
  readonly rooms: RoomsStore;
  readonly directory: DirectoryStore;
  readonly memberships: MembershipsStore;
  readonly aliases: AliasesStore;
  readonly users: UsersStore;
  readonly devices: DevicesStore;
  readonly accessTokens: AccessTokensStore;
  readonly filters: FiltersStore;
  readonly accountData: AccountDataStore;
  readonly receipts: ReceiptsStore;
  readonly deviceKeys: DeviceKeysStore;
  readonly crossSigningKeys: CrossSigningKeysStore;
  readonly oneTimeKeys: OneTimeKeysStore;
  readonly fallbackKeys: FallbackKeysStore;
  readonly toDevice: ToDeviceStore;
  readonly deviceLists: DeviceListsStore;
  readonly media: MediaStore;
  readonly transactionIds: TransactionIdsStore;
  readonly outbound: OutboundStore;
  readonly meta: MetaStore;
  readonly stream: StreamStore;
}

/** A half-open window over stream positions; see the module header. */
export interface StreamWindow {
  dir: 'f' | 'b';
  /** Start: exclusive going forwards, inclusive going backwards; unbounded if absent. */
  from?: number;
  /** End: inclusive going forwards, exclusive going backwards; unbounded if absent. */
  to?: number;
  limit?: number;
}

// ---------------------------------------------------------------------------
// Events, timelines, the DAG

export interface EventRecord {
  eventId: string;
  roomId: string;
  /** The event as received or created, `unsigned` included. */
  event: PDU;
  /** Position in the stream; absent for outliers, which stay out of timelines and /sync. */
  streamOrdering?: number;
  /** Topological ordering: the event's depth in the room DAG. */
  depth: number;
  outlier: boolean;
  /** Why the event failed auth; rejected events are kept so they are not fetched again. */
  rejected?: string;
  /** Passed auth against its own state but not against the room's current state. */
  softFailed?: boolean;
  /** The redaction event that redacted this one. */
  redactedBy?: string;
  /**
   * The state groups before and after the event, when stored with it (events stored since schema 6 with a
   * state: not rejected ones). Events stored before keep them apart: `eventState.of(record)` reads either.
   */
  stateGroups?: EventStateGroups;
}

/** The state groups before and after an event (equal for non-state events). */
export interface EventStateGroups {
  before: number;
  after: number;
}

export interface NewEvent {
  eventId: string;
  /** Given explicitly: v12 create events carry no room_id. */
  roomId: string;
  event: PDU;
  /** Outliers get no stream position (default false). */
  outlier?: boolean;
  rejected?: string;
  softFailed?: boolean;
  /** Defaults to `event.depth`, else 0. */
  depth?: number;
  /**
   * A backfilled event (history from before this server joined): it takes this stream position, a
   * negative integer below every live one, instead of the next. It sorts into the room's topological
   * order by depth like any event, and /sync's stream windows, which only move forward, never carry
   * it. The caller hands out the positions (descending as it walks back in time).
   */
  historicalPosition?: number;
  /** The event's state groups, stored on its row: no separate write (`eventState.set`) needed. */
  stateGroups?: EventStateGroups;
}

export type EventPatch = Partial<Pick<EventRecord, 'event' | 'rejected' | 'softFailed' | 'redactedBy' | 'stateGroups'>>;

export interface EventsReader {
  /** The event with this ID, if stored. */
  get(eventId: string): Promise<EventRecord | undefined>;
  /** The stored ones among `eventIds`, by ID. */
  getMany(eventIds: readonly string[]): Promise<Map<string, EventRecord>>;
  /** Whether the event is stored (outlier or not). */
  has(eventId: string): Promise<boolean>;
  /** Which of `eventIds` are stored: by key alone, no row read (a duplicate check). */
  storedIds(eventIds: readonly string[]): Promise<Set<string>>;
}

export interface EventsStore extends EventsReader {
  /**
   * Stores a new event, one row (its DAG edges are its prev_events, indexed; its state groups ride along when
   * given); non-outliers take the next stream position. Throws EXISTS if stored.
   */
  add(event: NewEvent): Promise<EventRecord>;
  /** Changes an event's record (redaction, rejection, the state groups of a promoted outlier); throws NOT_FOUND if absent. */
  update(eventId: string, patch: EventPatch): Promise<EventRecord>;
  /**
   * Makes an outlier part of the timeline at the next stream position (or, backfilling, at the given negative
   * `historicalPosition`: see NewEvent); no-op if it already is.
   */
  promote(eventId: string, historicalPosition?: number): Promise<EventRecord>;
}

/** Where a topological window starts or ends: depth first, stream ordering to break ties. */
export interface TopologicalPosition {
  depth: number;
  streamOrdering: number;
}

export interface TopologicalWindow {
  dir: 'f' | 'b';
  from?: TopologicalPosition;
  to?: TopologicalPosition;
  limit?: number;
}

export interface TimelineReader {
  /** A room's timeline events in stream order within `window` (for /messages and /sync). */
  range(roomId: string, window: StreamWindow): Promise<EventRecord[]>;
  /** Timeline events of every room within `window` (for incremental /sync). */
  rangeAll(window: StreamWindow): Promise<EventRecord[]>;
  /** A room's timeline events ordered by (depth, stream ordering), same window rules. */
  topological(roomId: string, window: TopologicalWindow): Promise<EventRecord[]>;
}

export interface DagReader {
  /** The event's prev_events, or undefined if the event is not stored. */
  prevEvents(eventId: string): Promise<string[] | undefined>;
  /** The event's auth_events, or undefined if the event is not stored. */
  authEvents(eventId: string): Promise<string[] | undefined>;
  /** Stored events that list `eventId` in their prev_events. */
  children(eventId: string): Promise<string[]>;
  /** The room's forward extremities (events no stored event builds on). */
  extremities(roomId: string): Promise<string[]>;
}

export interface DagStore extends DagReader {
  /** Replaces the room's forward extremities with `eventIds`. */
  setExtremities(roomId: string, eventIds: readonly string[]): Promise<void>;
}

// ---------------------------------------------------------------------------
// Room state

/**
 * A state group: a room state stored as a delta against an earlier group, so
 * events that share a state share one group. `null` in a delta removes a key.
 * Keys are `stateKeyOf(type, state_key)` from the core.
 */
export interface StateGroupRecord {
  id: number;
  roomId: string;
  /** The group this one is a delta against; absent for a full snapshot. */
  prevGroupId?: number;
  delta: Map<string, string | null>;
}

/** Delta chains longer than this are cut by storing a full snapshot instead. */
export const STATE_DELTA_CHAIN_LIMIT = 32;

export interface StateGroupsReader {
  /** The group as stored (a delta or a snapshot). */
  get(groupId: number): Promise<StateGroupRecord | undefined>;
  /** The full state of a group; throws NOT_FOUND if the group or one it builds on is missing. */
  load(groupId: number): Promise<StateMap>;
}

export interface StateGroupsStore extends StateGroupsReader {
  /** Stores `delta` against `prevGroupId` (or as a snapshot without one) and returns the new group's ID. */
  create(roomId: string, delta: Map<string, string | null>, prevGroupId?: number): Promise<number>;
  /** Stores `state` as a delta against `prevGroupId`; returns `prevGroupId` itself if the state is the same. */
  createFromState(roomId: string, state: StateMap, prevGroupId?: number): Promise<number>;
}

/** An event's state groups, by its ID. */
export interface EventStateRecord extends EventStateGroups {
  eventId: string;
}

export interface EventStateReader {
  /** The event's state groups, if recorded (on its row, or apart for events stored before schema 6). */
  get(eventId: string): Promise<EventStateRecord | undefined>;
  /** The state groups of an event whose record the caller holds: no read when they are on the record. */
  of(record: EventRecord): Promise<EventStateGroups | undefined>;
}

export interface EventStateStore extends EventStateReader {
  /** Records the event's state groups: on its row if it is stored (a read and a put), else apart. */
  set(record: EventStateRecord): Promise<void>;
}

export interface CurrentStateReader {
  /** The event ID at (type, stateKey) in the room's current state. */
  get(roomId: string, type: string, stateKey: string): Promise<string | undefined>;
  /** The room's whole current state. */
  load(roomId: string): Promise<StateMap>;
  /** State keys of one event type (e.g. all m.room.member) mapped to event IDs. */
  ofType(roomId: string, type: string): Promise<Map<string, string>>;
}

export interface CurrentStateStore extends CurrentStateReader {
  /** Applies a delta keyed by `stateKeyOf`; `null` removes the key. */
  apply(roomId: string, delta: Map<string, string | null>): Promise<void>;
  /** Replaces the room's current state with `state`. */
  replace(roomId: string, state: StateMap): Promise<void>;
}

// ---------------------------------------------------------------------------
// Rooms

export interface RoomRecord {
  roomId: string;
  roomVersion: string;
  creator: string;
  createdAt: number;
}

export interface RoomsReader {
  /** The room, if this server knows it. */
  get(roomId: string): Promise<RoomRecord | undefined>;
  /** Every known room, by room ID. */
  list(): Promise<RoomRecord[]>;
}

export interface RoomsStore extends RoomsReader {
  /** Inserts or replaces the room. */
  put(room: RoomRecord): Promise<void>;
}

export interface DirectoryReader {
  /** Whether the room is in the public room directory. */
  isPublic(roomId: string): Promise<boolean>;
  /** Rooms in the public directory, by room ID. */
  list(): Promise<string[]>;
}

export interface DirectoryStore extends DirectoryReader {
  /** Adds the room to the directory or removes it. */
  setPublic(roomId: string, visible: boolean): Promise<void>;
}

export type Membership = 'join' | 'invite' | 'leave' | 'ban' | 'knock';

export interface MembershipRecord {
  roomId: string;
  userId: string;
  membership: Membership;
  /** The m.room.member event that set it. */
  eventId: string;
}

export interface MembershipsReader {
  /** The user's membership of the room, if any. */
  get(roomId: string, userId: string): Promise<MembershipRecord | undefined>;
  /** The user's rooms, optionally only those with one membership. */
  forUser(userId: string, membership?: Membership): Promise<MembershipRecord[]>;
  /** The room's members, optionally only those with one membership. */
  forRoom(roomId: string, membership?: Membership): Promise<MembershipRecord[]>;
}

export interface MembershipsStore extends MembershipsReader {
  /** Records the user's current membership of the room. */
  set(record: MembershipRecord): Promise<void>;
}

export interface AliasRecord {
  alias: string;
  roomId: string;
  creator: string;
}

export interface AliasesReader {
  /** The alias, if it exists. */
  get(alias: string): Promise<AliasRecord | undefined>;
  /** Aliases pointing at the room. */
  forRoom(roomId: string): Promise<AliasRecord[]>;
}

export interface AliasesStore extends AliasesReader {
  /** Creates the alias; throws EXISTS if taken. */
  add(record: AliasRecord): Promise<void>;
  /** Removes the alias (no-op if absent). */
  delete(alias: string): Promise<void>;
}

// ---------------------------------------------------------------------------
// Accounts

export interface UserRecord {
  userId: string;
  passwordHash?: string;
  displayname?: string;
  avatarUrl?: string;
  deactivated: boolean;
  admin?: boolean;
  createdAt: number;
}

export interface UsersReader {
  /** The local user, if registered. */
  get(userId: string): Promise<UserRecord | undefined>;
  /** Local users by user ID, starting after `after`. */
  list(options?: { after?: string; limit?: number }): Promise<UserRecord[]>;
}

export interface UsersStore extends UsersReader {
  /** Registers the user; throws EXISTS if the ID is taken. */
  add(user: UserRecord): Promise<void>;
  /** Changes fields of the user; throws NOT_FOUND if absent. */
  update(userId: string, patch: Partial<Omit<UserRecord, 'userId'>>): Promise<UserRecord>;
}

export interface DeviceRecord {
  userId: string;
  deviceId: string;
  displayName?: string;
  lastSeenTs?: number;
  lastSeenIp?: string;
  createdAt: number;
}

export interface DevicesReader {
  /** The device, if it exists. */
  get(userId: string, deviceId: string): Promise<DeviceRecord | undefined>;
  /** The user's devices by device ID. */
  forUser(userId: string): Promise<DeviceRecord[]>;
}

export interface DevicesStore extends DevicesReader {
  /** Inserts or replaces the device. */
  put(device: DeviceRecord): Promise<void>;
  /** Changes fields of the device; throws NOT_FOUND if absent. */
  update(userId: string, deviceId: string, patch: Partial<Omit<DeviceRecord, 'userId' | 'deviceId'>>): Promise<DeviceRecord>;
  /** Removes the device row only (tokens and keys have their own deleteForDevice). */
  delete(userId: string, deviceId: string): Promise<void>;
}

/**
 * An access token as stored: only its hash (see token-hash.ts), so no row
 * holds the token itself. Callers pass the token; the store hashes it.
 */
export interface AccessTokenRecord {
  /** `accessTokenHash(token)`. */
  tokenHash: string;
  userId: string;
  deviceId: string;
  createdAt: number;
}

/** A token being issued: the token itself, which the store keeps only as a hash. */
export interface NewAccessToken {
  token: string;
  userId: string;
  deviceId: string;
  createdAt: number;
}

export interface AccessTokensReader {
  /** Who the token belongs to, if it is valid (looked up by its hash). */
  get(token: string): Promise<AccessTokenRecord | undefined>;
  /** Tokens issued to one device. */
  forDevice(userId: string, deviceId: string): Promise<AccessTokenRecord[]>;
}

export interface AccessTokensStore extends AccessTokensReader {
  /** Stores the token's hash with its owner. */
  put(record: NewAccessToken): Promise<void>;
  /** Revokes one token. */
  delete(token: string): Promise<void>;
  /** Revokes every token of one device, except the token `except` when given. */
  deleteForDevice(userId: string, deviceId: string, options?: { except?: string }): Promise<void>;
}

export interface FiltersReader {
  /** The filter the user uploaded under this ID. */
  get(userId: string, filterId: string): Promise<JsonObject | undefined>;
}

export interface FiltersStore extends FiltersReader {
  /** Stores a filter and returns its new ID. */
  create(userId: string, filter: JsonObject): Promise<string>;
}

export interface AccountDataRecord {
  userId: string;
  /** '' for global account data. */
  roomId: string;
  type: string;
  content: JsonObject;
  streamOrdering: number;
}

export interface AccountDataReader {
  /** One account data entry; `roomId` omitted for global data. */
  get(userId: string, type: string, roomId?: string): Promise<AccountDataRecord | undefined>;
  /** The user's global entries, or one room's when `roomId` is given; rows that cannot be decoded go to `onCorrupt` if given. */
  list(userId: string, roomId?: string, onCorrupt?: OnCorruptRow): Promise<AccountDataRecord[]>;
  /** The user's entries (global and per room) changed within `window`, in stream order (`onCorrupt` as for list). */
  changes(userId: string, window: StreamWindow, onCorrupt?: OnCorruptRow): Promise<AccountDataRecord[]>;
}

export interface AccountDataStore extends AccountDataReader {
  /** Sets an entry at the next stream position and returns it. */
  put(userId: string, type: string, content: JsonObject, roomId?: string): Promise<AccountDataRecord>;
}

export interface ReceiptRecord {
  roomId: string;
  receiptType: string;
  userId: string;
  /** '' for unthreaded receipts. */
  threadId: string;
  eventId: string;
  ts: number;
  streamOrdering: number;
}

export interface ReceiptsReader {
  /** The user's receipt of one type (and thread) in the room. */
  get(roomId: string, receiptType: string, userId: string, threadId?: string): Promise<ReceiptRecord | undefined>;
  /** Every current receipt in the room. */
  forRoom(roomId: string): Promise<ReceiptRecord[]>;
  /** The room's receipts changed within `window`, in stream order. */
  changes(roomId: string, window: StreamWindow): Promise<ReceiptRecord[]>;
}

export interface ReceiptsStore extends ReceiptsReader {
  /** Sets a receipt (replacing the user's previous one of that type and thread) at the next stream position. */
  put(receipt: Omit<ReceiptRecord, 'streamOrdering' | 'threadId'> & { threadId?: string }): Promise<ReceiptRecord>;
}

// ---------------------------------------------------------------------------
// End-to-end encryption

export interface DeviceKeysRecord {
  userId: string;
  deviceId: string;
  /** The signed device_keys object as uploaded. */
  keys: JsonObject;
}

export interface DeviceKeysReader {
  /** One device's keys. */
  get(userId: string, deviceId: string): Promise<DeviceKeysRecord | undefined>;
  /** Keys of every device of the user; rows that cannot be decoded go to `onCorrupt` if given (else CORRUPT_ROW). */
  forUser(userId: string, onCorrupt?: OnCorruptRow): Promise<DeviceKeysRecord[]>;
}

export interface DeviceKeysStore extends DeviceKeysReader {
  /** Inserts or replaces one device's keys. */
  put(record: DeviceKeysRecord): Promise<void>;
  /** Removes one device's keys. */
  delete(userId: string, deviceId: string): Promise<void>;
}

export type CrossSigningKeyType = 'master' | 'self_signing' | 'user_signing';

export interface CrossSigningKeyRecord {
  userId: string;
  keyType: CrossSigningKeyType;
  keys: JsonObject;
}

export interface CrossSigningKeysReader {
  /** One of the user's cross-signing keys. */
  get(userId: string, keyType: CrossSigningKeyType): Promise<CrossSigningKeyRecord | undefined>;
  /** All of the user's cross-signing keys; rows that cannot be decoded go to `onCorrupt` if given (else CORRUPT_ROW). */
  forUser(userId: string, onCorrupt?: OnCorruptRow): Promise<CrossSigningKeyRecord[]>;
}

export interface CrossSigningKeysStore extends CrossSigningKeysReader {
  /** Inserts or replaces one key. */
  put(record: CrossSigningKeyRecord): Promise<void>;
}

/** A claimed key: `id` is "algorithm:keyId", as in the key upload and claim APIs. */
export interface ClaimedKey {
  id: string;
  key: JsonValue;
}

export interface OneTimeKeysReader {
  /** Unclaimed keys per algorithm (one_time_key_counts). */
  counts(userId: string, deviceId: string): Promise<Record<string, number>>;
  /** The unclaimed key stored under "algorithm:keyId", if any. */
  get(userId: string, deviceId: string, id: string): Promise<JsonValue | undefined>;
}

export interface OneTimeKeysStore extends OneTimeKeysReader {
  /** Stores keys given as { "algorithm:keyId": key }, replacing same IDs. */
  add(userId: string, deviceId: string, keys: Record<string, JsonValue>): Promise<void>;
  /** Removes and returns one key of the algorithm (lowest key ID first), if any is left. */
  claim(userId: string, deviceId: string, algorithm: string): Promise<ClaimedKey | undefined>;
  /** Removes all of one device's keys. */
  deleteForDevice(userId: string, deviceId: string): Promise<void>;
}

export interface FallbackKeyRecord {
  userId: string;
  deviceId: string;
  algorithm: string;
  keyId: string;
  key: JsonValue;
  used: boolean;
}

export interface FallbackKeysReader {
  /** The device's fallback key for the algorithm. */
  get(userId: string, deviceId: string, algorithm: string): Promise<FallbackKeyRecord | undefined>;
  /** Algorithms whose fallback key has not been claimed (device_unused_fallback_key_types). */
  unusedAlgorithms(userId: string, deviceId: string): Promise<string[]>;
}

export interface FallbackKeysStore extends FallbackKeysReader {
  /** Sets the fallback key for the algorithm of "algorithm:keyId", unused. */
  put(userId: string, deviceId: string, id: string, key: JsonValue): Promise<void>;
  /** Returns the algorithm's fallback key and marks it used; it stays claimable until replaced. */
  claim(userId: string, deviceId: string, algorithm: string): Promise<ClaimedKey | undefined>;
  /** Removes all of one device's fallback keys. */
  deleteForDevice(userId: string, deviceId: string): Promise<void>;
}

export interface ToDeviceMessage {
  sender: string;
  type: string;
  content: JsonObject;
}

export interface ToDeviceRecord extends ToDeviceMessage {
  userId: string;
  deviceId: string;
  streamOrdering: number;
}

export interface ToDeviceReader {
  /** The device's inbox within `window` (forwards only), oldest first; rows that cannot be decoded go to `onCorrupt` if given. */
  list(userId: string, deviceId: string, window: Omit<StreamWindow, 'dir'>, onCorrupt?: OnCorruptRow): Promise<ToDeviceRecord[]>;
}

export interface ToDeviceStore extends ToDeviceReader {
  /** Puts a message in the device's inbox at the next stream position. */
  add(userId: string, deviceId: string, message: ToDeviceMessage): Promise<ToDeviceRecord>;
  /** Deletes the device's messages with stream ordering <= `upTo` (delivered ones). */
  deleteUpTo(userId: string, deviceId: string, upTo: number): Promise<void>;
  /** Deletes the device's oldest messages until at most `keep` remain; returns how many went. */
  keepNewest(userId: string, deviceId: string, keep: number): Promise<number>;
}

export interface DeviceListChange {
  userId: string;
  streamOrdering: number;
}

export interface DeviceListsReader {
  /** Users whose device lists changed within `window` (forwards only), each once, in order of last change. */
  changes(window: Omit<StreamWindow, 'dir'>): Promise<string[]>;
}

export interface DeviceListsStore extends DeviceListsReader {
  /** Records that the user's devices or keys changed, at the next stream position. */
  add(userId: string): Promise<DeviceListChange>;
}

// ---------------------------------------------------------------------------
// Media, idempotency, replication, meta

/**
 * Media content is stored as chunks of at most MEDIA_CHUNK_BYTES, so an upload
 * is written and a download read a chunk at a time and never held whole. A
 * chunk row is small enough to be one cheap request in every backend.
 */
export const MEDIA_CHUNK_BYTES = 256 * 1024;

/** A media item's description; its content is read chunk by chunk (MediaReader.chunk). */
export interface MediaRecord {
  mediaId: string;
  contentType: string;
  filename?: string;
  uploader: string;
  /** Byte length of the content. */
  size: number;
  /** How many chunks hold the content: `chunk(mediaId, i)` for 0 <= i < chunks. */
  chunks: number;
  createdAt: number;
}

/** A media item stored whole in one transaction (small content, tests). */
export interface NewMedia {
  mediaId: string;
  contentType: string;
  filename?: string;
  uploader: string;
  bytes: Uint8Array;
  createdAt: number;
}

/** The description of an upload whose chunks are stored (beginUpload, putChunk): what finishUpload commits. */
export interface FinishedUpload {
  mediaId: string;
  contentType: string;
  filename?: string;
  uploader: string;
  createdAt: number;
  /** The upload's blob, as given to beginUpload. */
  blobId: string;
  /** Byte length of all its chunks together. */
  size: number;
}

export interface MediaReader {
  /** The media item's description, if stored. */
  get(mediaId: string): Promise<MediaRecord | undefined>;
  /** Chunk `index` of the item's content; undefined past the last chunk or for an unknown item. */
  chunk(mediaId: string, index: number): Promise<Uint8Array | undefined>;
  /** Blobs of unfinished uploads begun before `before` (abandoned, or cut off by a crash). */
  staleUploads(before: number): Promise<string[]>;
}

/**
 * Media is written in one of two ways. Whole, with `add`, in one transaction.
 * Or streamed, over several transactions, because a transaction cannot wait
 * for a request body (IndexedDB commits one that waits for anything else):
 * `beginUpload` records an unfinished blob, `putChunk` stores its chunks one
 * transaction each, and `finishUpload` makes it a media item; until then no
 * reader sees it, and `abortUpload` (or a later sweep of `staleUploads`)
 * removes what an abandoned upload left.
 */
export interface MediaStore extends MediaReader {
  /** Stores a media item whole; throws EXISTS if the ID is taken. */
  add(media: NewMedia): Promise<MediaRecord>;
  /** Records that an upload into `blobId` has begun at `startedAt`; throws EXISTS if the blob exists. */
  beginUpload(blobId: string, startedAt: number): Promise<void>;
  /** Stores chunk `index` of an unfinished upload; throws NOT_FOUND if the upload is not (or no longer) recorded. */
  putChunk(blobId: string, index: number, bytes: Uint8Array): Promise<void>;
  /** Makes a finished upload's blob a media item; throws EXISTS if the ID is taken, NOT_FOUND if the upload is gone. */
  finishUpload(upload: FinishedUpload): Promise<MediaRecord>;
  /** Removes an unfinished upload and its chunks (no-op if absent). */
  abortUpload(blobId: string): Promise<void>;
  /** Removes a media item and its content. */
  delete(mediaId: string): Promise<void>;
}

export interface TransactionIdRecord {
  userId: string;
  deviceId: string;
  txnId: string;
  /** The event the request created, if any. */
  eventId?: string;
  /** The response body to replay. */
  response: JsonValue;
}

export interface TransactionIdsReader {
  /** The outcome of a client transaction ID already used by this device. */
  get(userId: string, deviceId: string, txnId: string): Promise<TransactionIdRecord | undefined>;
}

export interface TransactionIdsStore extends TransactionIdsReader {
  /** Records a transaction ID's outcome. */
  put(record: TransactionIdRecord): Promise<void>;
  /**
   * Records the outcome of a transaction ID the device has not used; if it
   * has, the write fails with EXISTS (on IndexedDB only when the write ends:
   * the check costs no read there).
   */
  add(record: TransactionIdRecord): Promise<void>;
}

export interface OutboundRecord {
  destination: string;
  /** Increases with every enqueue, across destinations. */
  seq: number;
  payload: JsonValue;
}

export interface OutboundReader {
  /** The destination's oldest unacknowledged items. */
  peek(destination: string, limit?: number): Promise<OutboundRecord[]>;
  /** Destinations with anything queued. */
  destinations(): Promise<string[]>;
}

export interface OutboundStore extends OutboundReader {
  /** Queues a payload for the destination; returns its record. */
  enqueue(destination: string, payload: JsonValue): Promise<OutboundRecord>;
  /** Drops the destination's items with seq <= `upTo` (delivered). */
  ack(destination: string, upTo: number): Promise<void>;
}

export interface MetaReader {
  /** The value stored under `key` (server signing seed, settings). */
  get<T = unknown>(key: string): Promise<T | undefined>;
}

export interface MetaStore extends MetaReader {
  /** Stores a structured-clonable value (JSON or Uint8Array) under `key`. */
  put(key: string, value: unknown): Promise<void>;
  /** Removes `key`. */
  delete(key: string): Promise<void>;
}

export interface StreamReader {
  /** The latest stream position handed out (0 before any). */
  current(): Promise<number>;
}

export interface StreamStore extends StreamReader {
  /** Hands out the next stream position. */
  next(): Promise<number>;
}

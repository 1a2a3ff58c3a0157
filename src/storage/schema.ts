/**
 * The tables behind the stores, as one append-only list of migrations shared by
 * every backend: a database at version n has run migrations[0..n-1]. Never edit
 * or reorder a published step; append a new one (IndexedDB keeps its version
 * in the database, SQLite in PRAGMA user_version). Rows are the store records
 * of types.ts; key paths name their fields.
 */
import type { Migration } from './engine.js';
import { accessTokenHash } from './token-hash.js';

/** Table names, so stores and migrations cannot disagree on spelling. */
export const T = {
  events: 'events',
  /** Dropped by migration 6 (children come from the events' by_prev index): see DROPPED_TABLES. */
  eventEdges: 'event_edges',
  extremities: 'extremities',
  stateGroups: 'state_groups',
  eventState: 'event_state',
  currentState: 'current_state',
  rooms: 'rooms',
  directory: 'directory',
  memberships: 'memberships',
  aliases: 'aliases',
  users: 'users',
  devices: 'devices',
  accessTokens: 'access_tokens',
  filters: 'filters',
  accountData: 'account_data',
  receipts: 'receipts',
  deviceKeys: 'device_keys',
  crossSigningKeys: 'cross_signing_keys',
  oneTimeKeys: 'one_time_keys',
  fallbackKeys: 'fallback_keys',
  toDevice: 'to_device',
  deviceLists: 'device_lists',
  media: 'media',
  mediaChunks: 'media_chunks',
  mediaUploads: 'media_uploads',
  transactionIds: 'transaction_ids',
  outbound: 'outbound',
  meta: 'meta',
  counters: 'counters',
} as const;

/** Tables an earlier migration created and a later one dropped: named in T only for those migrations. */
export const DROPPED_TABLES: ReadonlySet<string> = new Set([T.eventEdges]);

/** The `eventId` of a room's one row of forward extremities (see migration 3); no event ID is empty. */
export const EXTREMITIES_ROW = '';

/** Index names, per table. */
export const I = {
  eventsByRoomStream: 'by_room_stream',
  eventsByStream: 'by_stream',
  eventsByRoomDepth: 'by_room_depth',
  eventsByPrev: 'by_prev',
  membershipsByRoom: 'by_room',
  aliasesByRoom: 'by_room',
  accessTokensByDevice: 'by_device',
  accountDataByUserStream: 'by_user_stream',
  receiptsByRoomStream: 'by_room_stream',
} as const;

export const migrations: readonly Migration[] = [
  // 1: everything a homeserver keeps.
  (s) => {
    s.createTable(T.events, ['eventId']);
    // Outliers have no streamOrdering, so they are absent from both stream indexes.
    s.createIndex(T.events, I.eventsByRoomStream, ['roomId', 'streamOrdering']);
    s.createIndex(T.events, I.eventsByStream, ['streamOrdering']);
    s.createTable(T.eventEdges, ['prevId', 'eventId']);
    s.createTable(T.extremities, ['roomId', 'eventId']);
    s.createTable(T.stateGroups, ['id']);
    s.createTable(T.eventState, ['eventId']);
    s.createTable(T.currentState, ['roomId', 'type', 'stateKey']);

    s.createTable(T.rooms, ['roomId']);
    s.createTable(T.directory, ['roomId']);
    s.createTable(T.memberships, ['userId', 'roomId']);
    s.createIndex(T.memberships, I.membershipsByRoom, ['roomId', 'userId']);
    s.createTable(T.aliases, ['alias']);
    s.createIndex(T.aliases, I.aliasesByRoom, ['roomId', 'alias']);

    s.createTable(T.users, ['userId']);
    s.createTable(T.devices, ['userId', 'deviceId']);
    s.createTable(T.accessTokens, ['token']);
    s.createIndex(T.accessTokens, I.accessTokensByDevice, ['userId', 'deviceId']);
    s.createTable(T.filters, ['userId', 'filterId']);
    s.createTable(T.accountData, ['userId', 'roomId', 'type']);
    s.createIndex(T.accountData, I.accountDataByUserStream, ['userId', 'streamOrdering']);
    s.createTable(T.receipts, ['roomId', 'receiptType', 'userId', 'threadId']);
    s.createIndex(T.receipts, I.receiptsByRoomStream, ['roomId', 'streamOrdering']);

    s.createTable(T.deviceKeys, ['userId', 'deviceId']);
    s.createTable(T.crossSigningKeys, ['userId', 'keyType']);
    s.createTable(T.oneTimeKeys, ['userId', 'deviceId', 'algorithm', 'keyId']);
    s.createTable(T.fallbackKeys, ['userId', 'deviceId', 'algorithm']);
    s.createTable(T.toDevice, ['userId', 'deviceId', 'streamOrdering']);
    s.createTable(T.deviceLists, ['streamOrdering']);

    s.createTable(T.media, ['mediaId']);
    s.createTable(T.transactionIds, ['userId', 'deviceId', 'txnId']);
    s.createTable(T.outbound, ['destination', 'seq']);
    s.createTable(T.meta, ['key']);
    s.createTable(T.counters, ['name']);
  },
  // 2: topological order per room, for /messages pagination by depth; fills from existing events.
  (s) => {
    s.createIndex(T.events, I.eventsByRoomDepth, ['roomId', 'depth', 'streamOrdering']);
  },
  // 3: a room's forward extremities in one row, [roomId, EXTREMITIES_ROW] -> { eventIds }, instead of one row per
  // event: every event sent replaces them, and one row is one request where deleting and adding rows were two.
  async (s) => {
    const byRoom = new Map<string, Set<string>>();
    for (const row of await s.txn.scan(T.extremities)) {
      const roomId = row.roomId as string;
      const ids = byRoom.get(roomId) ?? new Set<string>();
      if (Array.isArray(row.eventIds)) for (const id of row.eventIds as string[]) ids.add(id);
      else ids.add(row.eventId as string);
      byRoom.set(roomId, ids);
    }
    await s.txn.deleteRange(T.extremities, {});
    for (const [roomId, ids] of byRoom) {
      await s.txn.put(T.extremities, { roomId, eventId: EXTREMITIES_ROW, eventIds: [...ids].sort() });
    }
  },
  // 4: access tokens at rest only as their SHA-256 (token-hash.ts), keyed by it. Rows keyed by the token itself are
  // rewritten, so the users of an upgraded server stay logged in.
  async (s) => {
    const rows = await s.txn.scan(T.accessTokens);
    s.deleteTable(T.accessTokens);
    s.createTable(T.accessTokens, ['tokenHash']);
    s.createIndex(T.accessTokens, I.accessTokensByDevice, ['userId', 'deviceId']);
    for (const { token, ...rest } of rows) {
      if (typeof token === 'string') await s.txn.put(T.accessTokens, { ...rest, tokenHash: accessTokenHash(token) });
    }
  },
  // 5: media content as chunks, [blobId, index] -> { bytes }, written while an upload streams in, and the uploads still
  // under way, [blobId] -> { startedAt }, so abandoned chunks can be found. Items stored whole before (a `bytes`
  // field on the media row) stay readable as one chunk.
  (s) => {
    s.createTable(T.mediaChunks, ['blobId', 'index']);
    s.createTable(T.mediaUploads, ['blobId']);
  },
  // 6: an event costs one row. Its children are found through a multiEntry index over its own prev_events
  // (filled from the events already stored, so the event_edges rows, one per edge, go); its state groups live on
  // its row (`stateGroups`) for events stored from now on, while rows stored before keep theirs in event_state,
  // read as a fallback (stores/state.ts).
  (s) => {
    s.createIndex(T.events, I.eventsByPrev, ['event.prev_events'], { multiEntry: true });
    s.deleteTable(T.eventEdges);
  },
];

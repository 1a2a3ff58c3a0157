/**
 * The storage layer's public entry: the Storage interface and its records,
 * the in-memory and IndexedDB backends, and the schema. The SQLite backend is
 * Node-only and has its own entry, `storage/sqlite/index.js`, so browser
 * bundles never see better-sqlite3.
 */
export type * from './types.js';
export { MEDIA_CHUNK_BYTES, STATE_DELTA_CHAIN_LIMIT } from './types.js';
export { accessTokenHash } from './token-hash.js';
export { StorageError, type StorageErrorCode, type OnCorruptRow } from './errors.js';
export { createMemoryStorage, type MemoryStorageOptions } from './memory/index.js';
export { openIdbStorage, type IdbStorageOptions } from './idb/index.js';
export { migrations } from './schema.js';
export type { Migration, SchemaEditor, EngineTxn } from './engine.js';

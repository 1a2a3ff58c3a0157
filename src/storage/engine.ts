/**
 * The contract between the storage layer and a backend ("engine"): ordered
 * tables of structured-clonable rows, each with a primary key read from the
 * row at a key path, optional secondary indexes, and transactions. The domain
 * stores (`stores/`) are written once against this; memory, IndexedDB and
 * SQLite each implement it, so they differ only in how rows reach the disk.
 * Internal to src/storage: the homeserver sees only `Storage` from types.ts.
 */
import { StorageError, type OnCorruptRow } from './errors.js';
import { encodeKey, KEY_SENTINEL, type Key } from './keys.js';

/** A stored row: a plain object of structured-clonable values (JSON, Uint8Array). */
export type Row = Record<string, unknown>;

export type TxnMode = 'readonly' | 'readwrite';

/** Keys that start with `prefix`, or keys between `lower` and `upper` (inclusive unless open). */
export interface KeyRange {
  prefix?: Key;
  lower?: Key;
  upper?: Key;
  lowerOpen?: boolean;
  upperOpen?: boolean;
}

/** A range over the primary key, or over `index` when given; `limit` counts rows returned. */
export interface Query extends KeyRange {
  index?: string;
  reverse?: boolean;
  limit?: number;
  /**
   * When given, rows that cannot be decoded are skipped and reported here (and `limit` counts only rows
   * returned); without it such a row fails the scan with CORRUPT_ROW. Only SQLite decodes rows itself; the
   * other backends get rows from structured clone and never meet one.
   */
  onCorrupt?: OnCorruptRow;
}

/** One transaction's view of the tables. */
export interface EngineTxn {
  readonly mode: TxnMode;
  /** The row with this primary key, if any; CORRUPT_ROW if it is stored but cannot be decoded. */
  get(table: string, key: Key): Promise<Row | undefined>;
  /** Inserts or replaces the row at its primary key, updating its index entries. */
  put(table: string, row: Row): Promise<void>;
  /**
   * Inserts the row; if its primary key is taken the transaction fails with
   * EXISTS, possibly only when it ends (IndexedDB learns it from the request,
   * without a read first). Backends without it get a count and a put.
   */
  insert?(table: string, row: Row): Promise<void>;
  /** Removes the row with this primary key (no-op if absent). */
  delete(table: string, key: Key): Promise<void>;
  /** Removes every row whose primary key is in `range`. */
  deleteRange(table: string, range: KeyRange): Promise<void>;
  /** Rows in key order (or reverse), by primary key or by `query.index`. */
  scan(table: string, query?: Query): Promise<Row[]>;
  /** How many rows `scan` would return without a limit. */
  count(table: string, query?: KeyRange & { index?: string }): Promise<number>;
}

/** What a migration may do: shape tables and indexes, and move data through `txn`. */
export interface SchemaEditor {
  /** Creates a table whose primary key is read from the row at `keyPath`. */
  createTable(name: string, keyPath: readonly string[]): void;
  /** Drops a table and its indexes. */
  deleteTable(name: string): void;
  /**
   * Creates an index over existing and future rows; rows lacking a key field are left out. A `multiEntry`
   * index has a key path of one field (a name or a dotted path) holding an array: a row is under each distinct
   * key part in it, as a one-part key (keys.ts `indexKeysOf`).
   */
  createIndex(table: string, name: string, keyPath: readonly string[], options?: IndexOptions): void;
  /** Drops an index. */
  deleteIndex(table: string, name: string): void;
  /** The upgrade transaction, for migrations that rewrite rows. */
  readonly txn: EngineTxn;
}

export interface IndexOptions {
  /** One entry per element of the array at the key path (IndexedDB's multiEntry). @default false */
  multiEntry?: boolean;
}

/** Throws SCHEMA for an index the backends cannot all build: a multiEntry index has a key path of one field. */
export function checkIndex(name: string, keyPath: readonly string[], options: IndexOptions = {}): string {
  if (keyPath.length === 0) throw new StorageError('SCHEMA', `index ${name} has an empty key path`);
  if (options.multiEntry && keyPath.length !== 1) throw new StorageError('SCHEMA', `multiEntry index ${name} must have a key path of one field`);
  return checkName(name);
}

/** One schema step; a database at version n has run migrations[0..n-1]. */
export type Migration = (schema: SchemaEditor) => void | Promise<void>;

/** A backend: runs transactions against its tables. */
export interface Engine {
  /**
   * Runs `fn` in one transaction over all tables: commits if it resolves, leaves
   * no trace if it rejects. `onCommit` runs right after the commit, before the
   * returned promise settles and before any later write commits, so commit
   * notices keep commit order.
   */
  transaction<T>(mode: TxnMode, fn: (txn: EngineTxn) => Promise<T>, onCommit?: () => void): Promise<T>;
  /** Lets running transactions finish, then releases the backend. */
  close(): Promise<void>;
}

/** A key range with both ends encoded (see keys.ts); an absent end is unbounded. */
export interface EncodedRange {
  lower?: string;
  upper?: string;
  lowerOpen: boolean;
  upperOpen: boolean;
}

/** Encodes a range; a prefix becomes [prefix, prefix + sentinel). */
export function encodeRange(range: KeyRange): EncodedRange {
  if (range.prefix) {
    if (range.lower || range.upper) throw new StorageError('BAD_KEY', 'a range has a prefix or bounds, not both');
    const prefix = encodeKey(range.prefix);
    return { lower: prefix, upper: prefix + KEY_SENTINEL, lowerOpen: false, upperOpen: true };
  }
  return {
    lower: range.lower ? encodeKey(range.lower) : undefined,
    upper: range.upper ? encodeKey(range.upper) : undefined,
    lowerOpen: range.lowerOpen ?? false,
    upperOpen: range.upperOpen ?? false,
  };
}

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** Table and index names end up in SQL and object store names; keep them plain. */
export function checkName(name: string): string {
  if (!NAME.test(name)) throw new StorageError('SCHEMA', `invalid table or index name ${JSON.stringify(name)}`);
  return name;
}

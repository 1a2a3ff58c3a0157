/**
 * The in-memory backend: each table is a Map of rows plus a sorted array of
 * encoded keys (keys.ts), each index a sorted array of encoded index keys with
 * the primary keys under each. Transactions run one at a time; a write applies
 * in place and keeps an undo log, so a callback that throws is rolled back
 * completely. Rows are cloned on the way in and out, as IndexedDB does.
 */
import type { Engine, EngineTxn, KeyRange, Migration, Query, Row, SchemaEditor, TxnMode } from '../engine.js';
import { checkIndex, checkName, encodeRange, type EncodedRange } from '../engine.js';
import { StorageError } from '../errors.js';
import { ActivityWindow, Exclusive } from '../exclusive.js';
import { encodeKey, indexKeysOf, type Key, primaryKeyOf } from '../keys.js';
import { migrations as allMigrations } from '../schema.js';
import { createStorage } from '../storage.js';
import type { Storage } from '../types.js';

export interface MemoryStorageOptions {
  /**
   * The schema steps to run; tests pass a prefix to get an older schema.
   * @default every migration in schema.ts
   */
  migrations?: readonly Migration[];
}

/** A fresh, empty storage held in memory (tests, throwaway servers). */
export function createMemoryStorage(options: MemoryStorageOptions = {}): Storage {
  return createStorage(new MemoryEngine(options.migrations ?? allMigrations));
}

class MemoryIndex {
  /** Distinct encoded index keys, sorted. */
  readonly keys: string[] = [];
  /** Encoded index key -> sorted encoded primary keys of the rows under it. */
  readonly entries = new Map<string, string[]>();

  constructor(
    readonly keyPath: readonly string[],
    readonly multiEntry: boolean,
  ) {}

  add(row: Row, primaryKey: string): void {
    for (const key of indexKeysOf(row, this.keyPath, this.multiEntry)) {
      const encoded = encodeKey(key);
      let primaryKeys = this.entries.get(encoded);
      if (!primaryKeys) {
        primaryKeys = [];
        this.entries.set(encoded, primaryKeys);
        insertSorted(this.keys, encoded);
      }
      insertSorted(primaryKeys, primaryKey);
    }
  }

  remove(row: Row, primaryKey: string): void {
    for (const key of indexKeysOf(row, this.keyPath, this.multiEntry)) {
      const encoded = encodeKey(key);
      const primaryKeys = this.entries.get(encoded);
      if (!primaryKeys) continue;
      removeSorted(primaryKeys, primaryKey);
      if (primaryKeys.length === 0) {
        this.entries.delete(encoded);
        removeSorted(this.keys, encoded);
      }
    }
  }
}

class MemoryTable {
  readonly rows = new Map<string, Row>();
  /** Encoded primary keys, sorted. */
  readonly keys: string[] = [];
  readonly indexes = new Map<string, MemoryIndex>();

  constructor(
    readonly name: string,
    readonly keyPath: readonly string[],
  ) {}

  /** Stores `row` (already cloned) and returns what it replaced. */
  put(row: Row): { key: string; old: Row | undefined } {
    const key = encodeKey(primaryKeyOf(this.name, row, this.keyPath));
    const old = this.rows.get(key);
    if (old) for (const index of this.indexes.values()) index.remove(old, key);
    else insertSorted(this.keys, key);
    this.rows.set(key, row);
    for (const index of this.indexes.values()) index.add(row, key);
    return { key, old };
  }

  /** Removes the row at an encoded key and returns it. */
  delete(key: string): Row | undefined {
    const old = this.rows.get(key);
    if (!old) return undefined;
    for (const index of this.indexes.values()) index.remove(old, key);
    removeSorted(this.keys, key);
    this.rows.delete(key);
    return old;
  }

  /** Encoded primary keys of the rows a query selects, in order. */
  select(query: Query): string[] {
    const range = encodeRange(query);
    const limit = query.limit ?? Infinity;
    const selected: string[] = [];
    if (limit <= 0) return selected;
    if (query.index === undefined) {
      const [start, end] = bounds(this.keys, range);
      if (query.reverse) for (let i = end - 1; i >= start && selected.length < limit; i--) selected.push(this.keys[i]);
      else for (let i = start; i < end && selected.length < limit; i++) selected.push(this.keys[i]);
      return selected;
    }
    const index = this.indexes.get(query.index);
    if (!index) throw new StorageError('SCHEMA', `no index ${query.index} on ${this.name}`);
    const [start, end] = bounds(index.keys, range);
    if (query.reverse) {
      for (let i = end - 1; i >= start && selected.length < limit; i--) {
        const primaryKeys = index.entries.get(index.keys[i])!;
        for (let j = primaryKeys.length - 1; j >= 0 && selected.length < limit; j--) selected.push(primaryKeys[j]);
      }
    } else {
      for (let i = start; i < end && selected.length < limit; i++) {
        for (const primaryKey of index.entries.get(index.keys[i])!) {
          if (selected.length >= limit) break;
          selected.push(primaryKey);
        }
      }
    }
    return selected;
  }
}

class MemoryEngine implements Engine {
  readonly tables = new Map<string, MemoryTable>();
  private readonly exclusive = new Exclusive();
  private readonly ready: Promise<void>;
  private closed = false;

  constructor(migrations: readonly Migration[]) {
    this.ready = this.exclusive.run(() => this.migrate(migrations));
    // Surfaced by the first transaction; this only keeps it from being reported as unhandled.
    this.ready.catch(() => undefined);
  }

  transaction<T>(mode: TxnMode, fn: (txn: EngineTxn) => Promise<T>, onCommit?: () => void): Promise<T> {
    if (this.closed) return Promise.reject(new StorageError('CLOSED', 'storage is closed'));
    return this.exclusive.run(async () => {
      await this.ready;
      const txn = new MemoryTxn(this, mode);
      let result: T;
      try {
        result = await fn(txn);
      } catch (error) {
        txn.rollback();
        throw error;
      }
      txn.commit();
      onCommit?.();
      return result;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.exclusive.idle();
  }

  table(name: string): MemoryTable {
    const table = this.tables.get(name);
    if (!table) throw new StorageError('SCHEMA', `no table ${name}`);
    return table;
  }

  private async migrate(migrations: readonly Migration[]): Promise<void> {
    const txn = new MemoryTxn(this, 'readwrite');
    const editor: SchemaEditor = {
      txn,
      createTable: (name, keyPath) => {
        if (this.tables.has(checkName(name))) throw new StorageError('SCHEMA', `table ${name} exists`);
        this.tables.set(name, new MemoryTable(name, [...keyPath]));
      },
      deleteTable: (name) => {
        this.table(name);
        this.tables.delete(name);
      },
      createIndex: (tableName, name, keyPath, options) => {
        const table = this.table(tableName);
        if (table.indexes.has(checkIndex(name, keyPath, options))) throw new StorageError('SCHEMA', `index ${name} exists`);
        const index = new MemoryIndex([...keyPath], options?.multiEntry ?? false);
        for (const [key, row] of table.rows) index.add(row, key);
        table.indexes.set(name, index);
      },
      deleteIndex: (tableName, name) => {
        if (!this.table(tableName).indexes.delete(name)) throw new StorageError('SCHEMA', `no index ${name}`);
      },
    };
    for (const migration of migrations) await migration(editor);
    txn.commit();
  }
}

/** Every write logs what it replaced, so a rollback can restore it. */
interface Undo {
  table: MemoryTable;
  key: string;
  old: Row | undefined;
}

class MemoryTxn implements EngineTxn {
  private readonly undo: Undo[] = [];
  private readonly window = new ActivityWindow();

  constructor(
    private readonly engine: MemoryEngine,
    readonly mode: TxnMode,
  ) {}

  async get(table: string, key: Key): Promise<Row | undefined> {
    this.window.check();
    const row = this.engine.table(table).rows.get(encodeKey(key));
    return row && structuredClone(row);
  }

  async put(table: string, row: Row): Promise<void> {
    this.checkWritable();
    const memoryTable = this.engine.table(table);
    const { key, old } = memoryTable.put(structuredClone(row));
    this.undo.push({ table: memoryTable, key, old });
  }

  async delete(table: string, key: Key): Promise<void> {
    this.checkWritable();
    const memoryTable = this.engine.table(table);
    const encoded = encodeKey(key);
    const old = memoryTable.delete(encoded);
    if (old) this.undo.push({ table: memoryTable, key: encoded, old });
  }

  async deleteRange(table: string, range: KeyRange): Promise<void> {
    this.checkWritable();
    const memoryTable = this.engine.table(table);
    for (const key of memoryTable.select(range)) {
      this.undo.push({ table: memoryTable, key, old: memoryTable.delete(key) });
    }
  }

  async scan(table: string, query: Query = {}): Promise<Row[]> {
    this.window.check();
    const memoryTable = this.engine.table(table);
    return memoryTable.select(query).map((key) => structuredClone(memoryTable.rows.get(key)!));
  }

  async count(table: string, query: KeyRange & { index?: string } = {}): Promise<number> {
    this.window.check();
    return this.engine.table(table).select(query).length;
  }

  commit(): void {
    this.window.finish();
    this.undo.length = 0;
  }

  rollback(): void {
    this.window.finish();
    for (let i = this.undo.length - 1; i >= 0; i--) {
      const { table, key, old } = this.undo[i];
      if (old) table.put(old);
      else table.delete(key);
    }
    this.undo.length = 0;
  }

  private checkWritable(): void {
    this.window.check();
    if (this.mode !== 'readwrite') throw new StorageError('READ_ONLY', 'write in a read-only transaction');
  }
}

/** [start, end) of the sorted keys inside an encoded range. */
function bounds(sorted: readonly string[], range: EncodedRange): [number, number] {
  let start = 0;
  let end = sorted.length;
  if (range.lower !== undefined) start = range.lowerOpen ? upperBound(sorted, range.lower) : lowerBound(sorted, range.lower);
  if (range.upper !== undefined) end = range.upperOpen ? lowerBound(sorted, range.upper) : upperBound(sorted, range.upper);
  return [start, Math.max(start, end)];
}

/** First position whose key is >= `key`. */
function lowerBound(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid] < key) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** First position whose key is > `key`. */
function upperBound(sorted: readonly string[], key: string): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid] <= key) low = mid + 1;
    else high = mid;
  }
  return low;
}

function insertSorted(sorted: string[], key: string): void {
  const at = lowerBound(sorted, key);
  if (sorted[at] !== key) sorted.splice(at, 0, key);
}

function removeSorted(sorted: string[], key: string): void {
  const at = lowerBound(sorted, key);
  if (sorted[at] === key) sorted.splice(at, 1);
}

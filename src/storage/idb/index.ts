/**
 * The IndexedDB backend for browsers (via `idb`). Each table is an object
 * store with an inline array key path and each index a native index, so
 * IndexedDB itself orders keys, fills new indexes and skips rows lacking an
 * index field. A logical operation is one IDB transaction over every store;
 * IndexedDB serialises overlapping read-write transactions itself. Migrations
 * run inside the version-change transaction, one version per step.
 */
import { type IDBPDatabase, type IDBPTransaction, wrap } from 'idb';
import type { Engine, EngineTxn, KeyRange, Migration, Query, Row, SchemaEditor, TxnMode } from '../engine.js';
import { checkName } from '../engine.js';
import { StorageError } from '../errors.js';
import { type Key, primaryKeyOf } from '../keys.js';
import { migrations as allMigrations } from '../schema.js';
import { createStorage } from '../storage.js';
import type { Storage } from '../types.js';

export interface IdbStorageOptions {
  /**
   * The IndexedDB implementation; tests pass a fresh fake-indexeddb IDBFactory
   * for isolation. `idb` recognises requests by the global IDB* classes, so
   * those must be of the same implementation (fake-indexeddb/auto installs them).
   * @default globalThis.indexedDB
   */
  indexedDB?: IDBFactory;
  /**
   * IDBKeyRange of the same implementation as `indexedDB`.
   * @default globalThis.IDBKeyRange
   */
  IDBKeyRange?: typeof IDBKeyRange;
  /**
   * The schema steps to run; tests pass a prefix to get an older schema.
   * @default every migration in schema.ts
   */
  migrations?: readonly Migration[];
}

type Db = IDBPDatabase<unknown>;
/** Typed as read-write so writes type-check; IdbTxn refuses them itself in read-only transactions. */
type Tx = IDBPTransaction<unknown, string[], 'readwrite'>;
type UpgradeTx = IDBPTransaction<unknown, string[], 'versionchange'>;

/** Opens (creating and migrating as needed) the IndexedDB database `name`. */
export async function openIdbStorage(name: string, options: IdbStorageOptions = {}): Promise<Storage> {
  const factory = options.indexedDB ?? globalThis.indexedDB;
  const keyRange = options.IDBKeyRange ?? globalThis.IDBKeyRange;
  if (!factory || !keyRange) throw new StorageError('SCHEMA', 'IndexedDB is not available');
  const steps = options.migrations ?? allMigrations;

  const request = factory.open(name, steps.length);
  let migrationError: unknown;
  request.addEventListener('upgradeneeded', (event) => {
    const db = wrap(request.result) as Db;
    const tx = wrap(request.transaction!) as unknown as UpgradeTx;
    // A failed step aborts the upgrade; the open request reports that, so `done` needs no second report.
    tx.done.catch(() => undefined);
    const editor = new IdbSchemaEditor(db, tx, new IdbTxn(tx as unknown as Tx, 'readwrite', factory, keyRange));
    // Steps may await their own requests; the version-change transaction stays open for them.
    (async () => {
      for (let step = event.oldVersion; step < steps.length; step++) await steps[step](editor);
    })().catch((error: unknown) => {
      migrationError = error;
      try {
        tx.abort();
      } catch {
        // Already finished: the open request reports the failure.
      }
    });
  });
  let db: Db;
  try {
    db = (await wrap(request)) as Db;
  } catch (error) {
    if (migrationError !== undefined) throw migrationError;
    if ((error as { name?: unknown } | null)?.name === 'VersionError') {
      throw new StorageError('SCHEMA', `database ${name} is newer than schema version ${steps.length}`);
    }
    throw error;
  }
  return createStorage(new IdbEngine(db, factory, keyRange));
}

class IdbEngine implements Engine {
  private readonly storeNames: string[];
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly factory: IDBFactory,
    private readonly keyRange: typeof IDBKeyRange,
  ) {
    this.storeNames = Array.from(db.objectStoreNames);
    // Another tab upgrading or deleting the database waits for us; let it proceed.
    db.addEventListener('versionchange', () => void this.close());
  }

  async transaction<T>(mode: TxnMode, fn: (txn: EngineTxn) => Promise<T>, onCommit?: () => void): Promise<T> {
    if (this.closed) throw new StorageError('CLOSED', 'storage is closed');
    const tx = this.db.transaction(this.storeNames, mode) as unknown as Tx;
    let result: T;
    try {
      result = await fn(new IdbTxn(tx, mode, this.factory, this.keyRange));
    } catch (error) {
      try {
        tx.abort();
      } catch {
        // Already aborted by a failed request, or committed after a foreign await.
      }
      await tx.done.catch(() => undefined);
      throw error;
    }
    await tx.done;
    onCommit?.();
    return result;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // IndexedDB lets running transactions finish before the connection closes.
    this.db.close();
  }
}

class IdbSchemaEditor implements SchemaEditor {
  constructor(
    private readonly db: Db,
    private readonly tx: UpgradeTx,
    readonly txn: EngineTxn,
  ) {}

  createTable(name: string, keyPath: readonly string[]): void {
    this.db.createObjectStore(checkName(name), { keyPath: [...keyPath] });
  }

  deleteTable(name: string): void {
    this.db.deleteObjectStore(name);
  }

  createIndex(table: string, name: string, keyPath: readonly string[]): void {
    this.tx.objectStore(table).createIndex(checkName(name), [...keyPath]);
  }

  deleteIndex(table: string, name: string): void {
    this.tx.objectStore(table).deleteIndex(name);
  }
}

class IdbTxn implements EngineTxn {
  constructor(
    private readonly tx: Tx,
    readonly mode: TxnMode,
    private readonly factory: IDBFactory,
    private readonly keyRange: typeof IDBKeyRange,
  ) {}

  get(table: string, key: Key): Promise<Row | undefined> {
    return this.request(() => this.tx.objectStore(table).get([...key]));
  }

  put(table: string, row: Row): Promise<void> {
    return this.request(async () => {
      this.checkWritable();
      const store = this.tx.objectStore(table);
      // Checked here so a bad key fails with BAD_KEY on every backend, not DataError.
      primaryKeyOf(table, row, store.keyPath as string[]);
      await store.put(row);
    });
  }

  delete(table: string, key: Key): Promise<void> {
    return this.request(async () => {
      this.checkWritable();
      await this.tx.objectStore(table).delete([...key]);
    });
  }

  deleteRange(table: string, range: KeyRange): Promise<void> {
    return this.request(async () => {
      this.checkWritable();
      const idbRange = this.toIdbRange(range);
      if (idbRange === 'empty') return;
      const store = this.tx.objectStore(table);
      await (idbRange ? store.delete(idbRange) : store.clear());
    });
  }

  scan(table: string, query: Query = {}): Promise<Row[]> {
    return this.request(async () => {
      const range = this.toIdbRange(query);
      if (range === 'empty' || (query.limit !== undefined && query.limit <= 0)) return [];
      const store = this.tx.objectStore(table);
      const source = query.index === undefined ? store : store.index(query.index);
      if (!query.reverse) return (await source.getAll(range, query.limit)) as Row[];
      // getAll cannot run backwards; walk a cursor instead.
      const rows: Row[] = [];
      const limit = query.limit ?? Infinity;
      let cursor = await source.openCursor(range, 'prev');
      while (cursor && rows.length < limit) {
        rows.push(cursor.value as Row);
        cursor = await cursor.continue();
      }
      return rows;
    });
  }

  count(table: string, query: KeyRange & { index?: string } = {}): Promise<number> {
    return this.request(async () => {
      const range = this.toIdbRange(query);
      if (range === 'empty') return 0;
      const store = this.tx.objectStore(table);
      return query.index === undefined ? store.count(range) : store.index(query.index).count(range);
    });
  }

  /**
   * An IDBKeyRange for `range`; undefined for all keys; 'empty' where IndexedDB
   * would throw (lower above upper) but the other backends simply select nothing.
   */
  private toIdbRange(range: KeyRange): IDBKeyRange | undefined | 'empty' {
    if (range.prefix) {
      if (range.lower || range.upper) throw new StorageError('BAD_KEY', 'a range has a prefix or bounds, not both');
      // An array key sorts after every string and number, so [...prefix, []] closes the prefix.
      return this.keyRange.bound([...range.prefix], [...range.prefix, []]);
    }
    const { lower, upper } = range;
    const lowerOpen = range.lowerOpen ?? false;
    const upperOpen = range.upperOpen ?? false;
    if (lower && upper) {
      const order = this.factory.cmp([...lower], [...upper]);
      if (order > 0 || (order === 0 && (lowerOpen || upperOpen))) return 'empty';
      return this.keyRange.bound([...lower], [...upper], lowerOpen, upperOpen);
    }
    if (lower) return this.keyRange.lowerBound([...lower], lowerOpen);
    if (upper) return this.keyRange.upperBound([...upper], upperOpen);
    return undefined;
  }

  private checkWritable(): void {
    if (this.mode === 'readonly') throw new StorageError('READ_ONLY', 'write in a read-only transaction');
  }

  /** Runs a request, translating IndexedDB's errors into the codes every backend throws. */
  private async request<R>(run: () => Promise<R>): Promise<R> {
    try {
      return await run();
    } catch (error) {
      throw translate(error);
    }
  }
}

function translate(error: unknown): unknown {
  // DOMException is not an Error subclass in every runtime; go by name.
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  const message = String((error as { message?: unknown } | null)?.message ?? '');
  if (error instanceof StorageError) return error;
  switch (name) {
    case 'TransactionInactiveError':
    case 'InvalidStateError': // what objectStore() throws once the transaction has finished
      return new StorageError('TXN_INACTIVE', 'transaction used after awaiting something other than its own requests');
    case 'ReadOnlyError':
      return new StorageError('READ_ONLY', 'write in a read-only transaction');
    case 'NotFoundError':
      return new StorageError('SCHEMA', message);
    case 'DataError':
      return new StorageError('BAD_KEY', message);
    default:
      return error;
  }
}

/**
 * The IndexedDB backend for browsers (opened and migrated via `idb`). Each
 * table is an object store with an inline array key path and each index a
 * native index, so IndexedDB itself orders keys, fills new indexes and skips
 * rows lacking an index field. A logical operation is one IDB transaction over
 * every store; IndexedDB serialises overlapping read-write transactions itself.
 * Migrations run inside the version-change transaction, one version per step.
 *
 * Speed: in Chromium every request costs a round trip to the browser process
 * and every wait for a reply costs another, so transactions make few requests
 * and wait for few replies. Writes are queued without waiting (see IdbTxn),
 * inserts learn of a taken key from the insert itself, a finished write asks
 * for its commit at once, a read returns without waiting for its commit,
 * backward scans are one getAllRecords request where the browser has it, and
 * an exclusive storage keeps its counters in memory.
 */
import { type IDBPDatabase, type IDBPTransaction, unwrap, wrap } from 'idb';
import type { Engine, EngineTxn, IndexOptions, KeyRange, Migration, Query, Row, SchemaEditor, TxnMode } from '../engine.js';
import { checkIndex, checkName } from '../engine.js';
import { StorageError } from '../errors.js';
import { type Key, type KeyPart, primaryKeyOf } from '../keys.js';
import { migrations as allMigrations, T } from '../schema.js';
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
  /**
   * Promises that nothing else writes the database while this storage is
   * open (in the app, the profile's Web Lock guarantees it). The counters
   * (stream position, IDs) are then kept in memory, so a write need not read
   * them first: one round trip less per write. Broken, the promise lets two
   * writers hand out the same stream position.
   * @default false
   */
  exclusive?: boolean;
}

type Db = IDBPDatabase<unknown>;
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
    const editor = new IdbSchemaEditor(db, tx, new IdbTxn(request.transaction!, 'readwrite', factory, keyRange));
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
  return createStorage(new IdbEngine(db, factory, keyRange, options.exclusive ?? false));
}

class IdbEngine implements Engine {
  private readonly db: IDBDatabase;
  private readonly storeNames: string[];
  private closed = false;
  /** Committed counter rows by name; kept only for an exclusive storage. */
  private readonly counters: Map<string, Row> | undefined;
  /** Read-write transactions begun and not yet finished. */
  private writing = 0;

  constructor(
    db: Db,
    private readonly factory: IDBFactory,
    private readonly keyRange: typeof IDBKeyRange,
    exclusive: boolean,
  ) {
    this.counters = exclusive ? new Map() : undefined;
    // The hot path talks to IndexedDB directly: `idb`'s proxies cost more than the requests they wrap.
    this.db = unwrap(db) as IDBDatabase;
    this.storeNames = Array.from(this.db.objectStoreNames);
    // Another tab upgrading or deleting the database waits for us; let it proceed.
    this.db.addEventListener('versionchange', () => void this.close());
  }

  async transaction<T>(mode: TxnMode, fn: (txn: EngineTxn) => Promise<T>, onCommit?: () => void): Promise<T> {
    if (this.closed) throw new StorageError('CLOSED', 'storage is closed');
    const tx = this.db.transaction(this.storeNames, mode);
    // A write begun while another is running starts after it commits: what memory holds may be older than its view.
    const counters = mode === 'readwrite' && this.counters ? new CounterCache(this.counters, this.writing === 0) : undefined;
    if (mode === 'readwrite') this.writing++;
    try {
      return await this.run(tx, mode, fn, counters, onCommit);
    } finally {
      if (mode === 'readwrite') this.writing--;
    }
  }

  private async run<T>(
    tx: IDBTransaction,
    mode: TxnMode,
    fn: (txn: EngineTxn) => Promise<T>,
    counters: CounterCache | undefined,
    onCommit: (() => void) | undefined,
  ): Promise<T> {
    const txn = new IdbTxn(tx, mode, this.factory, this.keyRange, counters);
    let result: T;
    try {
      result = await fn(txn);
      // A write fn did not wait for may have failed meanwhile.
      txn.throwIfFailed();
    } catch (error) {
      try {
        tx.abort();
      } catch {
        // Already aborted by a failed request, or committed after a foreign await.
      }
      await txn.done.catch(() => undefined);
      throw txn.failure ?? error;
    }
    if (mode === 'readonly') {
      // Everything fn read has arrived: the result needs no wait for the commit of a read.
      txn.done.catch(() => undefined);
      return result;
    }
    try {
      // Writes fn did not wait for are queued; ask for the commit now rather than after their replies.
      tx.commit();
    } catch {
      // Already committing on its own (fn ended after a foreign await).
    }
    await txn.done;
    counters?.committed();
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

  createIndex(table: string, name: string, keyPath: readonly string[], options?: IndexOptions): void {
    checkIndex(name, keyPath, options);
    // IndexedDB refuses an array key path for a multiEntry index: its keys are the array's elements themselves.
    if (options?.multiEntry) this.tx.objectStore(table).createIndex(name, keyPath[0]!, { multiEntry: true });
    else this.tx.objectStore(table).createIndex(name, [...keyPath]);
  }

  deleteIndex(table: string, name: string): void {
    this.tx.objectStore(table).deleteIndex(name);
  }
}

/**
 * One IndexedDB transaction. Reads resolve with their request. Writes are
 * queued and resolve at once: IndexedDB runs a transaction's requests in
 * order, so a later read sees them, and a write that fails aborts the whole
 * transaction, which then rejects with that write's error. Waiting for each
 * write's reply would only add a round trip per row.
 */
class IdbTxn implements EngineTxn {
  /** Settles when the transaction commits (resolves) or aborts (rejects with the first failure). */
  readonly done: Promise<void>;
  /** The first request failure, translated. */
  failure: unknown;
  /** Set once the transaction committed or aborted. */
  private finished = false;

  constructor(
    private readonly tx: IDBTransaction,
    readonly mode: TxnMode,
    private readonly factory: IDBFactory,
    private readonly keyRange: typeof IDBKeyRange,
    private readonly counters?: CounterCache,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      tx.addEventListener('complete', () => {
        this.finished = true;
        resolve();
      });
      const fail = () => {
        this.finished = true;
        reject(this.failure ?? translate(tx.error ?? new DOMException('transaction aborted', 'AbortError')));
      };
      tx.addEventListener('abort', fail);
      tx.addEventListener('error', (event) => {
        this.noteFailure((event.target as IDBRequest | null)?.error ?? tx.error);
      });
    });
    // Awaited by the engine for writes; a read's or an upgrade's abort is reported where it happens.
    this.done.catch(() => undefined);
  }

  get(table: string, key: Key): Promise<Row | undefined> {
    if (this.counters && table === T.counters) {
      const held = this.counters.get(key);
      if (held) {
        if (this.finished) return Promise.reject(new StorageError('TXN_INACTIVE', 'transaction used after it finished'));
        return this.failure === undefined ? Promise.resolve(held) : Promise.reject(this.failure);
      }
      const counters = this.counters;
      return this.read(() => this.tx.objectStore(table).get([...key])).then((row) => {
        if (row) counters.learn(key, row);
        return row;
      });
    }
    return this.read(() => this.tx.objectStore(table).get([...key]));
  }

  put(table: string, row: Row): Promise<void> {
    return this.write(() => {
      const store = this.tx.objectStore(table);
      // Checked here so a bad key fails with BAD_KEY on every backend, not DataError.
      const key = primaryKeyOf(table, row, store.keyPath as string[]);
      store.put(row);
      if (this.counters && table === T.counters) this.counters.wrote(key, row);
    });
  }

  insert(table: string, row: Row): Promise<void> {
    return this.write(() => {
      const store = this.tx.objectStore(table);
      primaryKeyOf(table, row, store.keyPath as string[]);
      // A taken key fails the request with ConstraintError, which aborts the transaction with EXISTS.
      store.add(row);
    });
  }

  delete(table: string, key: Key): Promise<void> {
    return this.write(() => {
      this.tx.objectStore(table).delete([...key]);
      if (table === T.counters) this.counters?.forget();
    });
  }

  deleteRange(table: string, range: KeyRange): Promise<void> {
    return this.write(() => {
      if (table === T.counters) this.counters?.forget();
      const idbRange = this.toIdbRange(range);
      if (idbRange === 'empty') return;
      const store = this.tx.objectStore(table);
      if (idbRange) store.delete(idbRange);
      else store.clear();
    });
  }

  scan(table: string, query: Query = {}): Promise<Row[]> {
    try {
      const store = this.tx.objectStore(table);
      const source = query.index === undefined ? store : store.index(query.index);
      const range = this.toIdbRange(query, isMultiEntry(source));
      if (range === 'empty' || (query.limit !== undefined && query.limit <= 0)) return Promise.resolve([]);
      if (!query.reverse) return this.request(source.getAll(range, query.limit)) as Promise<Row[]>;
      if (hasGetAllRecords(source)) {
        // One request for a backward read (Chromium 141+, fake-indexeddb).
        const request = source.getAllRecords({ query: range, count: query.limit, direction: 'prev' });
        return this.request(request).then((records) => records.map((record) => record.value as Row));
      }
      return this.reverseCursor(source, range, query.limit ?? Infinity);
    } catch (error) {
      return Promise.reject(translate(error));
    }
  }

  count(table: string, query: KeyRange & { index?: string } = {}): Promise<number> {
    return this.read(() => {
      const store = this.tx.objectStore(table);
      const source = query.index === undefined ? store : store.index(query.index);
      const range = this.toIdbRange(query, isMultiEntry(source));
      if (range === 'empty') return undefined;
      return source.count(range);
    }).then((n) => n ?? 0);
  }

  /** Rethrows the failure of a write nobody waited for. */
  throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Walks a cursor backwards where getAllRecords is missing. */
  private reverseCursor(source: IDBObjectStore | IDBIndex, range: IDBKeyRange | undefined, limit: number): Promise<Row[]> {
    return new Promise<Row[]>((resolve, reject) => {
      const rows: Row[] = [];
      const request = source.openCursor(range, 'prev');
      request.onsuccess = () => {
        const cursor = request.result;
        if (!cursor || rows.length >= limit) {
          resolve(rows);
          return;
        }
        rows.push(cursor.value as Row);
        if (rows.length >= limit) resolve(rows);
        else cursor.continue();
      };
      request.onerror = () => reject(translate(request.error));
    });
  }

  /** Issues a read; synchronous failures (inactive transaction, unknown store) reject like request failures. */
  private read<R>(issue: () => IDBRequest<R> | undefined): Promise<R | undefined> {
    let request: IDBRequest<R> | undefined;
    try {
      request = issue();
    } catch (error) {
      return Promise.reject(translate(error));
    }
    return request ? this.request(request) : Promise.resolve(undefined);
  }

  private request<R>(request: IDBRequest<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(translate(request.error));
    });
  }

  /** Queues a write (see the class comment); throws only what is known before IndexedDB runs it. */
  private write(issue: () => void): Promise<void> {
    try {
      if (this.mode === 'readonly') throw new StorageError('READ_ONLY', 'write in a read-only transaction');
      this.throwIfFailed();
      issue();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(translate(error));
    }
  }

  private noteFailure(error: unknown): void {
    // Requests still queued when the transaction aborts fail with AbortError: a consequence, not the cause.
    if (this.failure !== undefined || !error || (error as { name?: unknown }).name === 'AbortError') return;
    this.failure = translate(error);
  }

  /**
   * An IDBKeyRange for `range`; undefined for all keys; 'empty' where IndexedDB
   * would throw (lower above upper) but the other backends simply select nothing.
   * Over a multiEntry index (`scalar`) the engine's one-part keys are IndexedDB's
   * bare keys, which order as the one-part tuples do.
   */
  private toIdbRange(range: KeyRange, scalar = false): IDBKeyRange | undefined | 'empty' {
    if (scalar) return this.toScalarRange(range);
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

  private toScalarRange(range: KeyRange): IDBKeyRange | undefined | 'empty' {
    const part = (key: Key | undefined): KeyPart | undefined => {
      if (key === undefined) return undefined;
      if (key.length !== 1) throw new StorageError('BAD_KEY', 'a multiEntry index has one-part keys');
      return key[0];
    };
    if (range.prefix) {
      if (range.lower || range.upper) throw new StorageError('BAD_KEY', 'a range has a prefix or bounds, not both');
      if (range.prefix.length === 0) return undefined;
      return this.keyRange.only(part(range.prefix)!);
    }
    const lower = part(range.lower);
    const upper = part(range.upper);
    const lowerOpen = range.lowerOpen ?? false;
    const upperOpen = range.upperOpen ?? false;
    if (lower !== undefined && upper !== undefined) {
      const order = this.factory.cmp(lower, upper);
      if (order > 0 || (order === 0 && (lowerOpen || upperOpen))) return 'empty';
      return this.keyRange.bound(lower, upper, lowerOpen, upperOpen);
    }
    if (lower !== undefined) return this.keyRange.lowerBound(lower, lowerOpen);
    if (upper !== undefined) return this.keyRange.upperBound(upper, upperOpen);
    return undefined;
  }
}

/**
 * The counters of an exclusive storage as one write transaction sees them:
 * the committed rows the engine holds (only if no other write was running
 * when this one began) under the rows this transaction wrote. Rows this
 * transaction wrote become the committed ones when it commits.
 */
class CounterCache {
  private readonly written = new Map<string, Row>();
  private forgotten = false;

  constructor(
    private readonly held: Map<string, Row>,
    private readonly usable: boolean,
  ) {}

  get(key: Key): Row | undefined {
    const name = String(key[0]);
    const row = this.written.get(name) ?? (this.usable && !this.forgotten ? this.held.get(name) : undefined);
    return row && { ...row };
  }

  /** A row read from IndexedDB; a transaction that may hold it is as current as memory would be. */
  learn(key: Key, row: Row): void {
    if (this.usable && !this.forgotten && !this.written.has(String(key[0]))) this.held.set(String(key[0]), { ...row });
  }

  wrote(key: Key, row: Row): void {
    this.written.set(String(key[0]), { ...row });
  }

  /** A counter row was deleted: nothing held is trusted any more. */
  forget(): void {
    this.forgotten = true;
    this.written.clear();
    this.held.clear();
  }

  committed(): void {
    if (this.forgotten) this.held.clear();
    for (const [name, row] of this.written) this.held.set(name, row);
  }
}

interface IdbRecord {
  value: unknown;
}

type WithGetAllRecords = (IDBObjectStore | IDBIndex) & {
  getAllRecords(options: { query?: IDBKeyRange; count?: number; direction?: IDBCursorDirection }): IDBRequest<IdbRecord[]>;
};

function hasGetAllRecords(source: IDBObjectStore | IDBIndex): source is WithGetAllRecords {
  return typeof (source as Partial<WithGetAllRecords>).getAllRecords === 'function';
}

function isMultiEntry(source: IDBObjectStore | IDBIndex): boolean {
  return 'multiEntry' in source && source.multiEntry;
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
    case 'ConstraintError': // add() of a key that is taken
      return new StorageError('EXISTS', message);
    default:
      return error;
  }
}

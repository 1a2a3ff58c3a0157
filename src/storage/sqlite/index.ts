/**
 * The SQLite backend for Node (better-sqlite3, WAL mode). Each table is an SQL
 * table of (encoded key BLOB, row BLOB) sorted by key (keys.ts: blob order is
 * key order), each index a table of (encoded index key, primary key). Rows are
 * V8-serialized, the same structured clone IndexedDB applies. Index entries
 * are found from the row they belong to (a put reads the row it replaces), so
 * an index costs one B-tree per write, and a put that leaves an index key
 * unchanged does not touch that index: every B-tree a commit dirties is pages
 * written to the WAL, the main cost of a write. The connection's
 * calls are synchronous but transactions span the awaits of their callback, so
 * transactions (reads included) take turns: BEGIN ... COMMIT never interleave.
 * The schema version is PRAGMA user_version; the tables and indexes migrations
 * created are listed in _tables and _indexes so puts know which indexes to keep.
 * The database file is created with `fileMode` (0600) before SQLite opens it,
 * and existing files are narrowed to it: SQLite gives the -wal and -shm files
 * it creates the main file's mode, so none of the three is readable by others.
 */
import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import { deserialize, serialize } from 'node:v8';
import Database from 'better-sqlite3';
import type { Engine, EngineTxn, IndexOptions, KeyRange, Migration, Query, Row, SchemaEditor, TxnMode } from '../engine.js';
import { checkIndex, checkName, encodeRange, type EncodedRange } from '../engine.js';
import { StorageError } from '../errors.js';
import { ActivityWindow, Exclusive } from '../exclusive.js';
import { encodeKey, indexKeysOf, type Key, primaryKeyOf } from '../keys.js';
import { migrations as allMigrations } from '../schema.js';
import { createStorage } from '../storage.js';
import type { Storage } from '../types.js';

export interface SqliteStorageOptions {
  /**
   * The schema steps to run; tests pass a prefix to get an older schema.
   * @default every migration in schema.ts
   */
  migrations?: readonly Migration[];
  /**
   * Permission bits of the database file and its -wal and -shm files: bits
   * outside it are removed from existing files, and a new file gets it.
   * @default 0o600
   */
  fileMode?: number;
}

/** Opens (creating and migrating as needed) the database at `path`, or a private one for ':memory:'. */
export async function openSqliteStorage(path: string, options: SqliteStorageOptions = {}): Promise<Storage> {
  if (path !== ':memory:' && path !== '') restrictFiles(path, options.fileMode ?? 0o600);
  const engine = new SqliteEngine(new Database(path));
  try {
    await engine.migrate(options.migrations ?? allMigrations);
  } catch (error) {
    await engine.close();
    throw error;
  }
  return createStorage(engine);
}

/** Creates the database file with `mode` if absent and removes other bits from it and its -wal and -shm files. */
function restrictFiles(path: string, mode: number): void {
  if (!existsSync(path)) closeSync(openSync(path, 'a', mode));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    if (!existsSync(file)) continue;
    const current = statSync(file).mode & 0o777;
    if ((current & ~mode) !== 0) chmodSync(file, current & mode);
  }
}

interface IndexSchema {
  keyPath: readonly string[];
  multiEntry: boolean;
}

interface TableSchema {
  keyPath: readonly string[];
  indexes: Map<string, IndexSchema>;
}

type Db = Database.Database;
type Statement = Database.Statement;

const tableSql = (table: string) => `"t_${table}"`;
const indexSql = (table: string, index: string) => `"x_${table}__${index}"`;
const blob = (encoded: string) => Buffer.from(encoded, 'latin1');

class SqliteEngine implements Engine {
  readonly schema = new Map<string, TableSchema>();
  private readonly statements = new Map<string, Statement>();
  private readonly exclusive = new Exclusive();
  private closed = false;

  constructor(readonly db: Db) {
    db.pragma('journal_mode = WAL');
    // In WAL mode NORMAL loses at most the last commits on power loss, never consistency.
    db.pragma('synchronous = NORMAL');
    // A checkpoint costs two fsyncs plus copying every page the WAL holds, and runs inside the commit
    // that crosses this many pages; SQLite's 1,000 (4 MB) puts one on the path of about every 50th
    // message sent. At 10,000 pages (40 MB of WAL) they are ten times rarer and a page written by
    // many commits is copied once.
    db.pragma('wal_autocheckpoint = 10000');
    // Databases from before index entries were found through their rows carry a (pk) index on each
    // index table; nothing reads it any more, and keeping it would cost a B-tree per indexed write.
    const legacy = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name GLOB 'x_*__pk'`).all() as { name: string }[];
    for (const { name } of legacy) db.exec(`DROP INDEX "${name}"`);
    db.exec(`
      CREATE TABLE IF NOT EXISTS _tables (name TEXT PRIMARY KEY, key_path TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS _indexes (
        table_name TEXT NOT NULL, name TEXT NOT NULL, key_path TEXT NOT NULL, multi_entry INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (table_name, name));
    `);
    // Databases from before multiEntry indexes lack the column; every index they have is a plain one.
    const columns = db.prepare('PRAGMA table_info(_indexes)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'multi_entry')) db.exec('ALTER TABLE _indexes ADD COLUMN multi_entry INTEGER NOT NULL DEFAULT 0');
    this.loadSchema();
  }

  transaction<T>(mode: TxnMode, fn: (txn: EngineTxn) => Promise<T>, onCommit?: () => void): Promise<T> {
    return this.exclusive.run(async () => {
      if (this.closed) throw new StorageError('CLOSED', 'storage is closed');
      const result = await this.inTransaction(mode, fn);
      onCommit?.();
      return result;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.exclusive.idle();
    this.db.close();
  }

  /** Runs the migrations the database has not run yet, one transaction each. */
  async migrate(migrations: readonly Migration[]): Promise<void> {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > migrations.length) {
      throw new StorageError('SCHEMA', `database is at schema version ${version}, this code knows ${migrations.length}`);
    }
    for (let step = version; step < migrations.length; step++) {
      try {
        await this.inTransaction('readwrite', async (txn) => {
          await migrations[step](new SqliteSchemaEditor(this, txn));
          this.db.pragma(`user_version = ${step + 1}`);
        });
      } finally {
        // DDL invalidates prepared statements; a rolled-back step also leaves the cached schema stale.
        this.dropStatements();
        this.loadSchema();
      }
    }
  }

  tableSchema(table: string): TableSchema {
    const schema = this.schema.get(table);
    if (!schema) throw new StorageError('SCHEMA', `no table ${table}`);
    return schema;
  }

  /** A cached prepared statement. */
  statement(sql: string): Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  dropStatements(): void {
    this.statements.clear();
  }

  private async inTransaction<T>(mode: TxnMode, fn: (txn: SqliteTxn) => Promise<T>): Promise<T> {
    // Prepared (and cached) like every other statement: two of these run per transaction.
    this.statement(mode === 'readwrite' ? 'BEGIN IMMEDIATE' : 'BEGIN').run();
    const txn = new SqliteTxn(this, mode);
    let result: T;
    try {
      result = await fn(txn);
      txn.finish();
      this.statement('COMMIT').run();
    } catch (error) {
      txn.finish();
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw error;
    }
    return result;
  }

  private loadSchema(): void {
    this.schema.clear();
    const tables = this.db.prepare('SELECT name, key_path FROM _tables').all() as { name: string; key_path: string }[];
    for (const { name, key_path } of tables) this.schema.set(name, { keyPath: JSON.parse(key_path), indexes: new Map() });
    const indexes = this.db.prepare('SELECT table_name, name, key_path, multi_entry FROM _indexes').all() as {
      table_name: string;
      name: string;
      key_path: string;
      multi_entry: number;
    }[];
    for (const index of indexes) {
      this.tableSchema(index.table_name).indexes.set(index.name, { keyPath: JSON.parse(index.key_path), multiEntry: index.multi_entry === 1 });
    }
  }
}

class SqliteSchemaEditor implements SchemaEditor {
  constructor(
    private readonly engine: SqliteEngine,
    readonly txn: SqliteTxn,
  ) {}

  createTable(name: string, keyPath: readonly string[]): void {
    if (this.engine.schema.has(checkName(name))) throw new StorageError('SCHEMA', `table ${name} exists`);
    this.engine.db.exec(`CREATE TABLE ${tableSql(name)} (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID`);
    this.engine.db.prepare('INSERT INTO _tables (name, key_path) VALUES (?, ?)').run(name, JSON.stringify(keyPath));
    this.engine.schema.set(name, { keyPath: [...keyPath], indexes: new Map() });
    this.engine.dropStatements();
  }

  deleteTable(name: string): void {
    const schema = this.engine.tableSchema(name);
    for (const index of [...schema.indexes.keys()]) this.deleteIndex(name, index);
    this.engine.db.exec(`DROP TABLE ${tableSql(name)}`);
    this.engine.db.prepare('DELETE FROM _tables WHERE name = ?').run(name);
    this.engine.schema.delete(name);
    this.engine.dropStatements();
  }

  createIndex(table: string, name: string, keyPath: readonly string[], options?: IndexOptions): void {
    const schema = this.engine.tableSchema(table);
    if (schema.indexes.has(checkIndex(name, keyPath, options))) throw new StorageError('SCHEMA', `index ${name} exists`);
    const index: IndexSchema = { keyPath: [...keyPath], multiEntry: options?.multiEntry ?? false };
    const sql = indexSql(table, name);
    this.engine.db.exec(`CREATE TABLE ${sql} (ik BLOB NOT NULL, pk BLOB NOT NULL, PRIMARY KEY (ik, pk)) WITHOUT ROWID`);
    const insert = this.engine.db.prepare(`INSERT INTO ${sql} (ik, pk) VALUES (?, ?)`);
    // Read fully first: the connection cannot write while a SELECT is still stepping.
    const rows = this.engine.db.prepare(`SELECT k, v FROM ${tableSql(table)}`).all() as { k: Buffer; v: Buffer }[];
    for (const { k, v } of rows) {
      // A row that cannot be decoded cannot be read through the index either: it stays out of it.
      const row = tryDecodeRow(table, v);
      if (!(row instanceof StorageError)) for (const key of indexKeysOf(row, index.keyPath, index.multiEntry)) insert.run(blob(encodeKey(key)), k);
    }
    this.engine.db
      .prepare('INSERT INTO _indexes (table_name, name, key_path, multi_entry) VALUES (?, ?, ?, ?)')
      .run(table, name, JSON.stringify(keyPath), index.multiEntry ? 1 : 0);
    schema.indexes.set(name, index);
    this.engine.dropStatements();
  }

  deleteIndex(table: string, name: string): void {
    const schema = this.engine.tableSchema(table);
    if (!schema.indexes.has(name)) throw new StorageError('SCHEMA', `no index ${name} on ${table}`);
    this.engine.db.exec(`DROP TABLE ${indexSql(table, name)}`);
    this.engine.db.prepare('DELETE FROM _indexes WHERE table_name = ? AND name = ?').run(table, name);
    schema.indexes.delete(name);
    this.engine.dropStatements();
  }
}

class SqliteTxn implements EngineTxn {
  private readonly window = new ActivityWindow();

  constructor(
    private readonly engine: SqliteEngine,
    readonly mode: TxnMode,
  ) {}

  async get(table: string, key: Key): Promise<Row | undefined> {
    this.window.check();
    this.engine.tableSchema(table);
    const found = this.engine.statement(`SELECT v FROM ${tableSql(table)} WHERE k = ?`).get(blob(encodeKey(key))) as
      | { v: Buffer }
      | undefined;
    return found && decodeRow(table, found.v);
  }

  async put(table: string, row: Row): Promise<void> {
    this.checkWritable();
    const schema = this.engine.tableSchema(table);
    const primaryKey = blob(encodeKey(primaryKeyOf(table, row, schema.keyPath)));
    const value = serialize(row);
    // The row being replaced, if any, names the index entries to move.
    const replaced = schema.indexes.size === 0 ? undefined : this.rowAt(table, primaryKey);
    this.engine.statement(`INSERT OR REPLACE INTO ${tableSql(table)} (k, v) VALUES (?, ?)`).run(primaryKey, value);
    for (const [index, indexSchema] of schema.indexes) {
      const before = replaced ? encodedIndexKeys(replaced, indexSchema) : [];
      const after = encodedIndexKeys(row, indexSchema);
      for (const key of before) if (!after.includes(key)) this.deleteIndexEntry(table, index, key, primaryKey);
      for (const key of after) {
        if (!before.includes(key)) this.engine.statement(`INSERT INTO ${indexSql(table, index)} (ik, pk) VALUES (?, ?)`).run(blob(key), primaryKey);
      }
    }
  }

  async insert(table: string, row: Row): Promise<void> {
    this.checkWritable();
    const schema = this.engine.tableSchema(table);
    const primaryKey = blob(encodeKey(primaryKeyOf(table, row, schema.keyPath)));
    // A new row has no index entries to move: no read of the key first, the primary key refuses a taken one.
    const inserted = this.engine.statement(`INSERT OR IGNORE INTO ${tableSql(table)} (k, v) VALUES (?, ?)`).run(primaryKey, serialize(row));
    if (inserted.changes === 0) throw new StorageError('EXISTS', `${table} already has a row at this key`);
    for (const [index, indexSchema] of schema.indexes) {
      for (const key of encodedIndexKeys(row, indexSchema)) {
        this.engine.statement(`INSERT INTO ${indexSql(table, index)} (ik, pk) VALUES (?, ?)`).run(blob(key), primaryKey);
      }
    }
  }

  async delete(table: string, key: Key): Promise<void> {
    this.checkWritable();
    const schema = this.engine.tableSchema(table);
    const primaryKey = blob(encodeKey(key));
    const deleted = schema.indexes.size === 0 ? undefined : this.rowAt(table, primaryKey);
    if (deleted) this.deleteIndexEntries(table, schema, deleted, primaryKey);
    this.engine.statement(`DELETE FROM ${tableSql(table)} WHERE k = ?`).run(primaryKey);
  }

  async deleteRange(table: string, range: KeyRange): Promise<void> {
    this.checkWritable();
    const schema = this.engine.tableSchema(table);
    const encoded = encodeRange(range);
    const params: Buffer[] = [];
    const where = whereClause('k', encoded, params);
    if (schema.indexes.size > 0) {
      // Read fully first: the connection cannot write while a SELECT is still stepping.
      const rows = this.engine.statement(`SELECT k, v FROM ${tableSql(table)} ${where}`).all(...params) as { k: Buffer; v: Buffer }[];
      for (const { k, v } of rows) {
        const row = tryDecodeRow(table, v);
        if (row instanceof StorageError) this.deleteIndexEntriesByScan(schema, table, k);
        else this.deleteIndexEntries(table, schema, row, k);
      }
    }
    this.engine.statement(`DELETE FROM ${tableSql(table)} ${where}`).run(...params);
  }

  async scan(table: string, query: Query = {}): Promise<Row[]> {
    this.window.check();
    const limit = query.limit ?? -1; // SQLite: a negative LIMIT means none
    if (query.limit !== undefined && query.limit <= 0) return [];
    const params: Buffer[] = [];
    const order = query.reverse ? 'DESC' : 'ASC';
    const sql =
      query.index === undefined
        ? `SELECT v FROM ${tableSql(table)} ${whereClause('k', encodeRange(query), params)} ORDER BY k ${order} LIMIT ?`
        : `SELECT t.v AS v FROM ${this.indexTable(table, query.index)} AS x JOIN ${tableSql(table)} AS t ON t.k = x.pk ` +
          `${whereClause('x.ik', encodeRange(query), params)} ORDER BY x.ik ${order}, x.pk ${order} LIMIT ?`;
    this.engine.tableSchema(table);
    const { onCorrupt } = query;
    if (!onCorrupt) return (this.engine.statement(sql).all(...params, limit) as { v: Buffer }[]).map((row) => decodeRow(table, row.v));
    // Skipping: step through the rows so a skipped one does not shorten a limited page.
    const out: Row[] = [];
    for (const { v } of this.engine.statement(sql).iterate(...params, -1) as IterableIterator<{ v: Buffer }>) {
      const row = tryDecodeRow(table, v);
      if (row instanceof StorageError) onCorrupt(row);
      else if (out.push(row) === limit) break;
    }
    return out;
  }

  async count(table: string, query: KeyRange & { index?: string } = {}): Promise<number> {
    this.window.check();
    const params: Buffer[] = [];
    const sql =
      query.index === undefined
        ? `SELECT count(*) AS n FROM ${tableSql(table)} ${whereClause('k', encodeRange(query), params)}`
        : `SELECT count(*) AS n FROM ${this.indexTable(table, query.index)} ${whereClause('ik', encodeRange(query), params)}`;
    this.engine.tableSchema(table);
    return (this.engine.statement(sql).get(...params) as { n: number }).n;
  }

  finish(): void {
    this.window.finish();
  }

  /**
   * The stored row at an encoded primary key, to find its index entries. A row that cannot be decoded has its
   * entries removed here by a scan of each index (rare, and the only way to find them), and reads as absent:
   * replacing or deleting a poisoned row must work, it is how one gets rid of it.
   */
  private rowAt(table: string, primaryKey: Buffer): Row | undefined {
    const found = this.engine.statement(`SELECT v FROM ${tableSql(table)} WHERE k = ?`).get(primaryKey) as { v: Buffer } | undefined;
    if (!found) return undefined;
    const row = tryDecodeRow(table, found.v);
    if (!(row instanceof StorageError)) return row;
    this.deleteIndexEntriesByScan(this.engine.tableSchema(table), table, primaryKey);
    return undefined;
  }

  /** Removes every index entry pointing at `primaryKey`, without the row (a full scan of each index table). */
  private deleteIndexEntriesByScan(schema: TableSchema, table: string, primaryKey: Buffer): void {
    for (const index of schema.indexes.keys()) {
      this.engine.statement(`DELETE FROM ${indexSql(table, index)} WHERE pk = ?`).run(primaryKey);
    }
  }

  /** Removes the index entries of `row`, stored at `primaryKey`. */
  private deleteIndexEntries(table: string, schema: TableSchema, row: Row, primaryKey: Buffer): void {
    for (const [index, indexSchema] of schema.indexes) {
      for (const key of encodedIndexKeys(row, indexSchema)) this.deleteIndexEntry(table, index, key, primaryKey);
    }
  }

  private deleteIndexEntry(table: string, index: string, key: string, primaryKey: Buffer): void {
    this.engine.statement(`DELETE FROM ${indexSql(table, index)} WHERE ik = ? AND pk = ?`).run(blob(key), primaryKey);
  }

  private indexTable(table: string, index: string): string {
    if (!this.engine.tableSchema(table).indexes.has(index)) {
      throw new StorageError('SCHEMA', `no index ${index} on ${table}`);
    }
    return indexSql(table, index);
  }

  private checkWritable(): void {
    this.window.check();
    if (this.mode !== 'readwrite') throw new StorageError('READ_ONLY', 'write in a read-only transaction');
  }
}

/** A stored row decoded; CORRUPT_ROW if V8 cannot rebuild it (too deep, damaged, from an incompatible writer). */
function decodeRow(table: string, bytes: Buffer): Row {
  const row = tryDecodeRow(table, bytes);
  if (row instanceof StorageError) throw row;
  return row;
}

function tryDecodeRow(table: string, bytes: Buffer): Row | StorageError {
  try {
    const row = deserialize(bytes) as unknown;
    if (row !== null && typeof row === 'object' && !Array.isArray(row)) return row as Row;
    return new StorageError('CORRUPT_ROW', `${table}: a stored row is not an object`);
  } catch (error) {
    return new StorageError('CORRUPT_ROW', `${table}: a stored row cannot be decoded (${(error as Error).message})`);
  }
}

/** The encoded keys a row has in an index: none when it lacks a key field, several in a multiEntry index. */
function encodedIndexKeys(row: Row, index: IndexSchema): string[] {
  return indexKeysOf(row, index.keyPath, index.multiEntry).map(encodeKey);
}

/** A WHERE clause for an encoded range on `column`, pushing its parameters. */
function whereClause(column: string, range: EncodedRange, params: Buffer[]): string {
  const conditions: string[] = [];
  if (range.lower !== undefined) {
    conditions.push(`${column} ${range.lowerOpen ? '>' : '>='} ?`);
    params.push(blob(range.lower));
  }
  if (range.upper !== undefined) {
    conditions.push(`${column} ${range.upperOpen ? '<' : '<='} ?`);
    params.push(blob(range.upper));
  }
  return conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
}

/**
 * Planting rows that cannot be read back into a SQLite database, as a version
 * of the server that let a value nested 2,400 deep reach storage would have
 * left them: V8 serializes such a value but refuses to deserialize it. Used to
 * test that reads skip such a row (CORRUPT_ROW) instead of failing whole.
 */
import { serialize } from 'node:v8';
import Database from 'better-sqlite3';
import { encodeKey, type Key } from '../../src/storage/keys.js';

/** V8 bytes of `row` with `poison` nested `depth` deep under `field`: serialize takes them, deserialize does not. */
export function unreadableRowBytes(row: Record<string, unknown>, field: string, depth = 2_400): Buffer {
  let deep: unknown = 'leaf';
  for (let i = 0; i < depth; i++) deep = { d: deep };
  return serialize({ ...row, [field]: deep });
}

/** Writes `bytes` as the row at `key` of `table`, through a second connection (the database may be open). */
export function plantRow(path: string, table: string, key: Key, bytes: Buffer): void {
  const db = new Database(path);
  try {
    db.prepare(`INSERT OR REPLACE INTO "t_${table}" (k, v) VALUES (?, ?)`).run(Buffer.from(encodeKey(key), 'latin1'), bytes);
  } finally {
    db.close();
  }
}

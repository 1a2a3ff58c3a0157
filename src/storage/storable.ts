/**
 * The write-side guarantee of storage: no write is acknowledged that could
 * not be read back. Every row goes through `checkStorable` once, before the
 * engine sees it (txn.ts wraps each engine transaction in `checkedWrites`),
 * so memory, IndexedDB and SQLite refuse the same rows with the same typed
 * error and the transaction fails with nothing written. Why it is needed: V8's
 * serializer (SQLite rows, and structured clone in IndexedDB and the memory
 * backend) accepts values nested deeper than its deserializer can rebuild
 * (about 2,200 levels), and a row nobody can read takes down every read that
 * scans past it. A row is JSON plus Uint8Array: plain objects and arrays,
 * strings, finite or not numbers, booleans, null, undefined (absent fields),
 * and byte arrays, nested at most MAX_ROW_DEPTH deep.
 *
 * The walk is iterative (an explicit stack) and visits each object once, so
 * its cost is linear in the row and a hostile row cannot overflow it.
 */
import type { EngineTxn, Row } from './engine.js';
import { StorageError } from './errors.js';

/**
 * Deepest nesting a row may have, the row itself being depth 1. Far below
 * V8's ~2,200 and a little above the JSON ingress's 100 (http/json-ingress.ts),
 * whose values stores wrap in a few levels of record.
 */
export const MAX_ROW_DEPTH = 512;

/** Throws UNSTORABLE unless `row` can be stored and read back by every backend. */
export function checkStorable(table: string, row: unknown, maxDepth = MAX_ROW_DEPTH): void {
  const seen = new Set<object>();
  const stack: { value: unknown; depth: number }[] = [{ value: row, depth: 1 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    switch (typeof value) {
      case 'string':
      case 'number':
      case 'boolean':
      case 'undefined':
        continue;
      case 'object':
        break;
      default:
        throw new StorageError('UNSTORABLE', `${table}: a row holds a ${typeof value}, which storage cannot keep`);
    }
    if (value === null || value instanceof Uint8Array) continue;
    if (depth > maxDepth) throw new StorageError('UNSTORABLE', `${table}: a row nested deeper than ${maxDepth} levels`);
    // A value met again (shared, or a cycle) was checked the first time; serialization keeps it as a reference.
    if (seen.has(value)) continue;
    seen.add(value);
    if (Array.isArray(value)) {
      for (const item of value) stack.push({ value: item, depth: depth + 1 });
      continue;
    }
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      throw new StorageError('UNSTORABLE', `${table}: a row holds a ${value.constructor?.name ?? 'non-plain'} object`);
    }
    for (const key of Object.keys(value)) stack.push({ value: (value as Record<string, unknown>)[key], depth: depth + 1 });
  }
}

/** `txn` with every put and insert checked first (reads, deletes and counts pass through). */
export function checkedWrites(txn: EngineTxn): EngineTxn {
  const checked: EngineTxn = {
    get mode() {
      return txn.mode;
    },
    get: (table, key) => txn.get(table, key),
    put: (table: string, row: Row) => {
      checkStorable(table, row);
      return txn.put(table, row);
    },
    delete: (table, key) => txn.delete(table, key),
    deleteRange: (table, range) => txn.deleteRange(table, range),
    scan: (table, query) => txn.scan(table, query),
    count: (table, query) => txn.count(table, query),
  };
  if (txn.insert) {
    const insert = txn.insert.bind(txn);
    checked.insert = (table: string, row: Row) => {
      checkStorable(table, row);
      return insert(table, row);
    };
  }
  return checked;
}

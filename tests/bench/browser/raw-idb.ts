/**
 * The limit that IndexedDB figures stand beside: raw batched writes and reads of
 * ~500-byte records straight through the browser's IndexedDB, in the page
 * that measures the homeserver, replication or cold-start figure, in the same run.
 */

const PAYLOAD = 'x'.repeat(500);

/** A fresh database of one `records` store, named `name` (random, deleted by `dropScratch`). */
function openScratch(name: string): Promise<IDBDatabase> {
  return new Promise<IDBDatabase>((resolve, reject) => {
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => open.result.createObjectStore('records', { keyPath: 'id' });
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

function dropScratch(db: IDBDatabase, name: string): void {
  db.close();
  indexedDB.deleteDatabase(name);
}

/** Writes records `from` (inclusive) to `to` (exclusive) in one transaction. */
function writeRecords(db: IDBDatabase, from: number, to: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const t = db.transaction('records', 'readwrite');
    const store = t.objectStore('records');
    for (let k = from; k < to; k++) store.put({ id: k, payload: PAYLOAD });
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
  });
}

/** Raw IndexedDB batched writes of ~500-byte records, `perTxn` per transaction: records/s. */
export async function rawIdbWrites(perTxn: number, total: number): Promise<number> {
  const name = `raw-${perTxn}-${Math.random()}`;
  const db = await openScratch(name);
  const start = performance.now();
  for (let i = 0; i < total; i += perTxn) await writeRecords(db, i, i + perTxn);
  const rate = (total * 1000) / (performance.now() - start);
  dropScratch(db, name);
  return rate;
}

/** Raw IndexedDB reads of `total` ~500-byte records, written first in batches of 500, read back in one cursor pass: records/s. */
export async function rawIdbReads(total: number): Promise<number> {
  const name = `raw-read-${Math.random()}`;
  const db = await openScratch(name);
  for (let i = 0; i < total; i += 500) await writeRecords(db, i, Math.min(total, i + 500));
  const start = performance.now();
  let read = 0;
  await new Promise<void>((resolve, reject) => {
    const t = db.transaction('records', 'readonly');
    const cursor = t.objectStore('records').openCursor();
    cursor.onsuccess = () => {
      if (cursor.result) {
        read++;
        cursor.result.continue();
      }
    };
    t.oncomplete = () => resolve();
    t.onerror = () => reject(t.error);
  });
  const rate = (read * 1000) / (performance.now() - start);
  dropScratch(db, name);
  return rate;
}

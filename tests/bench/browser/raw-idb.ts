/**
 * The limit that IndexedDB figures stand beside: raw batched writes of
 * ~500-byte records straight through the browser's IndexedDB, in the page
 * that measures the homeserver or replication figure, in the same run.
 */

/** Raw IndexedDB batched writes of ~500-byte records, `perTxn` per transaction: records/s. */
export async function rawIdbWrites(perTxn: number, total: number): Promise<number> {
  const name = `raw-${perTxn}-${Math.random()}`;
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    const open = indexedDB.open(name, 1);
    open.onupgradeneeded = () => open.result.createObjectStore('records', { keyPath: 'id' });
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const payload = 'x'.repeat(500);
  const start = performance.now();
  for (let i = 0; i < total; i += perTxn) {
    await new Promise<void>((resolve, reject) => {
      const t = db.transaction('records', 'readwrite');
      const store = t.objectStore('records');
      for (let k = i; k < i + perTxn; k++) store.put({ id: k, payload });
      t.oncomplete = () => resolve();
      t.onerror = () => reject(t.error);
    });
  }
  const rate = (total * 1000) / (performance.now() - start);
  db.close();
  indexedDB.deleteDatabase(name);
  return rate;
}

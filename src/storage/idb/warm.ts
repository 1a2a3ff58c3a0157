/**
 * Opening an existing IndexedDB database early, before the code that uses it has loaded. In Chromium the
 * first open of a database in a while has the browser process load its backing store, which on a busy
 * machine takes hundreds of milliseconds; an open issued at once overlaps that with fetching and
 * evaluating the rest of the app, and the real open (openIdbStorage, with its version and migrations)
 * finds the store ready. The early connection never creates a database (the version-change transaction
 * of a missing one is aborted, so migrations still start from nothing), never holds up an upgrade (it
 * closes when another connection asks for a new version) and is closed by the returned function.
 */

/** Starts opening `name` if it exists; call the result once the real storage is open (or failed to). */
export function warmIdbDatabase(name: string, factory: IDBFactory | undefined = globalThis.indexedDB): () => void {
  if (!factory) return () => {};
  let connection: IDBDatabase | undefined;
  let released = false;
  let request: IDBOpenDBRequest;
  try {
    request = factory.open(name);
  } catch {
    return () => {};
  }
  request.onupgradeneeded = () => {
    // No such database: leave its creation to openIdbStorage.
    request.transaction?.abort();
  };
  request.onsuccess = () => {
    connection = request.result;
    connection.onversionchange = () => connection?.close();
    if (released) connection.close();
  };
  request.onerror = (event) => event.preventDefault();
  return () => {
    released = true;
    connection?.close();
  };
}

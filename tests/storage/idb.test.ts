// The storage contract on the IndexedDB backend over fake-indexeddb. `idb` recognises
// requests and cursors by the global IDB* classes, so those come from fake-indexeddb/auto;
// a fresh IDBFactory per test keeps the databases of different tests apart.
import 'fake-indexeddb/auto';
import { IDBFactory, IDBKeyRange } from 'fake-indexeddb';
import * as vitest from 'vitest';
import { openIdbStorage } from '../../src/storage/index.js';
import { runStorageContract } from './contract.js';

runStorageContract(
  'idb',
  {
    persistent: true,
    location: () => {
      const indexedDB = new IDBFactory();
      return { open: (options) => openIdbStorage('hometab', { indexedDB, IDBKeyRange, ...options }) };
    },
  },
  vitest,
);

// The same with `exclusive`: counters held in memory between writes must change nothing a caller sees.
runStorageContract(
  'idb (exclusive)',
  {
    persistent: true,
    location: () => {
      const indexedDB = new IDBFactory();
      return { open: (options) => openIdbStorage('hometab', { indexedDB, IDBKeyRange, exclusive: true, ...options }) };
    },
  },
  vitest,
);

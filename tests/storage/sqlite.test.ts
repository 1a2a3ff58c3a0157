// The storage contract on the SQLite backend: one database file per test, in a temporary directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as vitest from 'vitest';
import { openSqliteStorage } from '../../src/storage/sqlite/index.js';
import { runStorageContract } from './contract.js';

runStorageContract(
  'sqlite',
  {
    persistent: true,
    location: () => {
      const dir = mkdtempSync(join(tmpdir(), 'hometab-storage-'));
      return {
        open: (options) => openSqliteStorage(join(dir, 'hometab.sqlite'), options),
        cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  vitest,
);

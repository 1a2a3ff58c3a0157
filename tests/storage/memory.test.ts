// The storage contract on the in-memory backend.
import * as vitest from 'vitest';
import { createMemoryStorage } from '../../src/storage/index.js';
import { runStorageContract } from './contract.js';

runStorageContract(
  'memory',
  {
    persistent: false,
    location: () => ({ open: async (options) => createMemoryStorage(options) }),
  },
  vitest,
);

/**
 * The storage contract for a real browser: bundle this file (it imports
 * nothing from Node) and call `runStorageContractInBrowser()` in a page served
 * from an http(s) origin. It runs the suite against the memory backend and
 * the browser's own IndexedDB, with a small sequential runner and vitest's
 * `expect` matchers (from @vitest/expect), and resolves with the results.
 * tests/storage/run-browser-contract.ts does all of that in Chromium.
 */
import {
  chai,
  GLOBAL_EXPECT,
  getState,
  JestAsymmetricMatchers,
  JestChaiExpect,
  JestExtend,
  setState,
} from '@vitest/expect';
import type { ExpectStatic } from 'vitest';
import { createMemoryStorage, openIdbStorage } from '../../src/storage/index.js';
import { type ContractBackend, runStorageContract, type TestApi } from './contract.js';

export interface BrowserContractResult {
  passed: string[];
  failed: { name: string; error: string }[];
}

type Hook = () => Promise<void>;

interface Suite {
  name: string;
  beforeEach: Hook[];
  afterEach: Hook[];
  children: (Suite | Test)[];
}

interface Test {
  name: string;
  body: () => Promise<void>;
}

/** Runs the contract against memory and IndexedDB storage in this browser. */
export async function runStorageContractInBrowser(): Promise<BrowserContractResult> {
  const root: Suite = { name: '', beforeEach: [], afterEach: [], children: [] };
  const api = collector(root);
  runStorageContract('memory', memoryBackend, api);
  runStorageContract('idb', idbBackend(), api);
  runStorageContract('idb (exclusive)', idbBackend(true), api);
  const result: BrowserContractResult = { passed: [], failed: [] };
  await runSuite(root, [], result);
  return result;
}

const memoryBackend: ContractBackend = {
  persistent: false,
  location: () => ({ open: async (options) => createMemoryStorage(options) }),
};

function idbBackend(exclusive = false): ContractBackend {
  let counter = 0;
  const run = `${Date.now().toString(36)}${exclusive ? 'x' : ''}`;
  return {
    persistent: true,
    location: () => {
      const name = `hometab-contract-${run}-${counter++}`;
      return {
        open: (options) => openIdbStorage(name, { exclusive, ...options }),
        cleanup: () =>
          new Promise<void>((resolve, reject) => {
            const request = indexedDB.deleteDatabase(name);
            request.onsuccess = () => resolve();
            request.onerror = () => reject(request.error);
          }),
      };
    },
  };
}

/** A TestApi that records suites and tests into `root` for runSuite. */
function collector(root: Suite): TestApi {
  let current = root;
  return {
    describe(name, body) {
      const suite: Suite = { name, beforeEach: [], afterEach: [], children: [] };
      current.children.push(suite);
      const parent = current;
      current = suite;
      try {
        body();
      } finally {
        current = parent;
      }
    },
    it(name, body) {
      current.children.push({ name, body });
    },
    beforeEach(hook) {
      current.beforeEach.push(hook);
    },
    afterEach(hook) {
      current.afterEach.push(hook);
    },
    expect: createExpect(),
  };
}

/** Runs tests one at a time: outer beforeEach hooks first, afterEach hooks innermost first, always. */
async function runSuite(suite: Suite, parents: Suite[], result: BrowserContractResult): Promise<void> {
  const chain = [...parents, suite];
  for (const child of suite.children) {
    if ('children' in child) {
      await runSuite(child, chain, result);
      continue;
    }
    const name = [...chain.map((s) => s.name).filter(Boolean), child.name].join(' > ');
    let error: unknown;
    const ran: Suite[] = [];
    try {
      for (const level of chain) {
        ran.push(level);
        for (const hook of level.beforeEach) await hook();
      }
      await child.body();
    } catch (e) {
      error = e;
    }
    for (const level of ran.reverse()) {
      for (const hook of level.afterEach) {
        try {
          await hook();
        } catch (e) {
          error ??= e;
        }
      }
    }
    if (error === undefined) result.passed.push(name);
    else result.failed.push({ name, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  }
}

/** vitest's `expect` outside vitest: chai with the Jest-style matchers installed. */
function createExpect(): ExpectStatic {
  chai.use(JestExtend);
  chai.use(JestChaiExpect);
  chai.use(JestAsymmetricMatchers);
  const expect = ((value: unknown, message?: string) => {
    const { assertionCalls } = getState(expect);
    setState({ assertionCalls: assertionCalls + 1 }, expect);
    return chai.expect(value, message);
  }) as unknown as ExpectStatic;
  Object.assign(expect, chai.expect);
  setState(
    {
      assertionCalls: 0,
      isExpectingAssertions: false,
      isExpectingAssertionsError: null,
      expectedAssertionsNumber: null,
      expectedAssertionsNumberErrorGen: null,
    },
    expect,
  );
  (globalThis as Record<symbol, unknown>)[GLOBAL_EXPECT] = expect;
  return expect;
}

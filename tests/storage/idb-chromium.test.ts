/**
 * The storage contract suite in real Chromium, against the browser's own
 * IndexedDB (and the memory backend, for comparison): the same suite that runs
 * on fake-indexeddb and SQLite in Node.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bundleForBrowser, chromiumAvailable, launchChromium, openScriptPage } from '../support/chromium.js';
import type { BrowserContractResult } from './contract-browser-entry.js';

describe.skipIf(!chromiumAvailable() && !process.env.CI)('storage contract in Chromium', () => {
  it('passes on real IndexedDB', async () => {
    const script = await bundleForBrowser(fileURLToPath(new URL('./contract-browser-entry.ts', import.meta.url)), { globalName: 'storageContract' });
    const browser = await launchChromium();
    try {
      const page = await openScriptPage(browser, script);
      const result = (await page.page.evaluate(() =>
        (globalThis as unknown as { storageContract: { runStorageContractInBrowser(): Promise<unknown> } }).storageContract.runStorageContractInBrowser(),
      )) as BrowserContractResult;
      await page.close();
      expect(result.failed).toEqual([]);
      expect(result.passed.filter((name) => name.includes('idb')).length).toBeGreaterThan(40);
    } finally {
      await browser.close();
    }
  }, 120_000);
});

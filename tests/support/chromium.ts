/**
 * Real Chromium for tests and benchmarks: bundles a browser entry with
 * esbuild, serves it on 127.0.0.1 and drives Debian's /usr/bin/chromium through
 * playwright-core with the flags NETWORK.md verified on this machine.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { build } from 'esbuild';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--allow-loopback-in-peer-connection',
  '--use-fake-ui-for-media-stream',
];

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM_PATH);
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_FLAGS, headless: true });
}

/**
 * Bundles `entry` for the browser (ES2022, one file, no Node polyfills) and
 * returns the code. With `globalName` the entry's exports land on
 * `globalThis[globalName]`, for tests that call into the page.
 */
export async function bundleForBrowser(entry: string, options: { globalName?: string } = {}): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: options.globalName ? 'iife' : 'esm',
    globalName: options.globalName,
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0]!.text;
  // The page loads scripts as modules, whose top-level `var` is not global.
  return options.globalName ? `${code}\nglobalThis.${options.globalName} = ${options.globalName};\n` : code;
}

export interface BrowserPage {
  page: Page;
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `script` as a module on a blank page at http://127.0.0.1 (a secure
 * context, so WebCrypto and IndexedDB behave as on a real deployment) and opens it.
 */
export async function openScriptPage(browser: Browser, script: string): Promise<BrowserPage> {
  const html = '<!doctype html><meta charset="utf-8"><title>hometab test</title><script type="module" src="/entry.js"></script>';
  // Module scripts are deferred: wait for it to have run before handing the page over.
  const server: Server = createServer((req, res) => {
    if (req.url === '/entry.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    } else {
      res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    }
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: 'load' });
  return {
    page,
    url,
    async close() {
      await context.close();
      await new Promise<void>((ok) => server.close(() => ok()));
      if (errors.length) throw new Error(`page errors: ${errors.join('\n')}`);
    },
  };
}

/**
 * A browser whose profile lives in `userDataDir` (its own Chromium process):
 * IndexedDB survives closing it and launching it again on the same directory,
 * which a `newContext()` (incognito, in memory) does not.
 */
export async function launchPersistentChromium(userDataDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM_PATH, args: CHROMIUM_FLAGS, headless: true });
}

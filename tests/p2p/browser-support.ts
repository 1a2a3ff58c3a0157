// Pages for the p2p Chromium tests: serves one bundled script on 127.0.0.1 and opens
// pages on it in a given browser context (two pages of one context share BroadcastChannel;
// pages of separate contexts do not).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BrowserContext, Page } from 'playwright-core';

export interface ScriptServer {
  url: string;
  open(context: BrowserContext): Promise<Page>;
  close(): Promise<void>;
}

/** `globalName` is what the bundle puts on globalThis; a page is handed over once it is there. */
export async function serveScript(script: string, globalName = 'hometabP2p'): Promise<ScriptServer> {
  const html = '<!doctype html><meta charset="utf-8"><title>hometab p2p test</title><script type="module" src="/entry.js"></script>';
  const server: Server = createServer((req, res) => {
    if (req.url === '/entry.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(html);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    async open(context) {
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error('page error:', e));
      await page.goto(url, { waitUntil: 'load' });
      await page.waitForFunction((name) => name in globalThis, globalName);
      return page;
    },
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

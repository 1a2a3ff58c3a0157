// Real Chromium (Debian's, flags from NETWORK.md): two pages in separate contexts connect through
// a Node relay, upgrade to a direct WebRTC link and exchange federation requests over it; the relay
// stops and the link keeps working. Two pages of one context talk over BroadcastChannel, no relay.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { bundleForBrowser, chromiumAvailable, launchChromium } from '../support/chromium.js';
import { createRelay, type Relay } from '../../src/p2p/relay.js';
import type { PeerInfo } from '../../src/p2p/transport.js';
import { serveScript, type ScriptServer } from './browser-support.js';
import type * as Entry from './browser-entry.js';

type Api = typeof Entry;
const call = <K extends keyof Api>(page: Page, name: K, ...args: Parameters<Api[K]>): Promise<Awaited<ReturnType<Api[K]>>> =>
  page.evaluate(
    ([n, a]) => (globalThis as unknown as { hometabP2p: Record<string, (...x: unknown[]) => unknown> }).hometabP2p[n as string]!(...(a as unknown[])),
    [name, args] as const,
  ) as Promise<Awaited<ReturnType<Api[K]>>>;

const seedHex = (): string => randomBytes(32).toString('hex');

async function until(page: Page, name: keyof Api, predicate: (value: unknown) => boolean, timeoutMs = 15_000, ...args: unknown[]): Promise<unknown> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await call(page, name as 'peers', ...(args as []));
    if (predicate(value)) return value;
    if (Date.now() > end) throw new Error(`timed out waiting on ${String(name)}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!chromiumAvailable() && !process.env.CI)('p2p in Chromium', () => {
  let browser: Browser;
  let server: ScriptServer;

  beforeAll(async () => {
    const script = await bundleForBrowser(fileURLToPath(new URL('./browser-entry.ts', import.meta.url)), { globalName: 'hometabP2p' });
    server = await serveScript(script);
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('two tabs connect through the relay, go direct over WebRTC, and keep talking when the relay stops', async () => {
    const relay: Relay = await createRelay();
    const contexts = [await browser.newContext(), await browser.newContext()];
    try {
      const [p1, p2] = await Promise.all(contexts.map((c) => server.open(c)));
      const relays = relay.addresses();
      const s1 = await call(p1!, 'startLibp2p', seedHex(), relays);
      const s2 = await call(p2!, 'startLibp2p', seedHex(), relays);
      await until(p1!, 'reachable', (v) => v === true);
      await until(p2!, 'reachable', (v) => v === true);

      const first = await call(p1!, 'request', s2, '/_matrix/federation/v1/send/1', { pdus: [] });
      expect(first).toEqual({ status: 200, body: { origin: s1, path: '/_matrix/federation/v1/send/1', body: { pdus: [] } } });
      await until(p1!, 'peers', (v) => (v as PeerInfo[]).some((p) => p.server === s2 && p.direct && p.via === 'webrtc'));
      await until(p2!, 'peers', (v) => (v as PeerInfo[]).some((p) => p.server === s1 && p.direct && p.via === 'webrtc'));
      // The link was announced: online over the relayed hop then a link change, or online directly.
      const seen = await call(p1!, 'events');
      expect(seen.some((e) => e === 'peer:link webrtc direct' || e === 'peer:online webrtc direct'), seen.join('; ')).toBe(true);
      const back = await call(p2!, 'request', s1, '/back');
      expect(back.body).toMatchObject({ origin: s2 });

      await relay.stop();
      const afterRelay = await call(p1!, 'request', s2, '/after-relay');
      expect(afterRelay).toMatchObject({ status: 200, body: { origin: s1 } });
      expect((await call(p2!, 'request', s1, '/after-relay-back')).body).toMatchObject({ origin: s2 });
      expect(await call(p1!, 'peers')).toEqual([{ server: s2, direct: true, via: 'webrtc' }]);
      await Promise.all([call(p1!, 'stop'), call(p2!, 'stop')]);
    } finally {
      await Promise.all(contexts.map((c) => c.close()));
      await relay.stop().catch(() => {});
    }
  }, 90_000);

  it('two pages of one browser context talk over BroadcastChannel with no relay', async () => {
    const context = await browser.newContext();
    try {
      const [p1, p2] = [await server.open(context), await server.open(context)];
      const channel = `hometab-test-${Date.now()}`;
      const s1 = await call(p1, 'startBroadcast', seedHex(), channel);
      const s2 = await call(p2, 'startBroadcast', seedHex(), channel);
      await until(p1, 'peers', (v) => (v as PeerInfo[]).length === 1);
      expect(await call(p1, 'peers')).toEqual([{ server: s2, direct: true, via: 'broadcast-channel' }]);
      expect(await call(p1, 'request', s2, '/over-bc', { n: 1 })).toEqual({ status: 200, body: { origin: s1, path: '/over-bc', body: { n: 1 } } });
      expect((await call(p2, 'request', s1, '/back')).body).toMatchObject({ origin: s2 });
      await Promise.all([call(p1, 'stop'), call(p2, 'stop')]);
    } finally {
      await context.close();
    }
  }, 60_000);
});

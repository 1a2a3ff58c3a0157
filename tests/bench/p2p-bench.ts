/**
 * p2p figures in real Chromium: two pages (separate contexts) connect through
 * a Node relay and upgrade to a direct WebRTC link; the federation protocol's
 * request/response round trip on that link is measured beside a raw
 * RTCDataChannel round trip between the same two pages (the limit: what any
 * protocol on WebRTC pays), p50 and p99 of each, and beside an echo on one
 * long-lived libp2p stream on the same link (what libp2p's WebRTC streams
 * cost without opening a stream per request). Requests go over
 * `/hometab/federation/2` as the transport sends them, and over version 1
 * (a stream per request) for comparison. Rounds alternate in halves.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { bundleForBrowser, chromiumAvailable, launchChromium } from '../support/chromium.js';
import { createRelay } from '../../src/p2p/relay.js';
import type { PeerInfo } from '../../src/p2p/transport.js';
import { serveScript } from '../p2p/browser-support.js';
import { percentile, type BenchRow } from './report.js';

const ROUNDS = 1_000;
const WARM_UP = 100;

function call(page: Page, name: string, ...args: unknown[]): Promise<unknown> {
  return page.evaluate(([n, a]) => (globalThis as unknown as { hometabP2p: Record<string, (...x: unknown[]) => unknown> }).hometabP2p[n as string]!(...(a as unknown[])), [name, args] as const);
}

async function until(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function runP2pBench(): Promise<BenchRow[]> {
  if (!chromiumAvailable()) {
    console.warn('chromium not found at /usr/bin/chromium: skipping p2p figures');
    return [];
  }
  const script = await bundleForBrowser(fileURLToPath(new URL('../p2p/browser-entry.ts', import.meta.url)), { globalName: 'hometabP2p' });
  const server = await serveScript(script);
  const relay = await createRelay();
  const browser = await launchChromium();
  try {
    const contexts = [await browser.newContext(), await browser.newContext()];
    const [p1, p2] = [await server.open(contexts[0]!), await server.open(contexts[1]!)] as [Page, Page];
    const relays = relay.addresses();
    const s1 = (await call(p1, 'startLibp2p', randomBytes(32).toString('hex'), relays)) as string;
    const s2 = (await call(p2, 'startLibp2p', randomBytes(32).toString('hex'), relays)) as string;
    void s1;
    await until(async () => (await call(p1, 'reachable')) === true && (await call(p2, 'reachable')) === true, 'relay reservations');
    const started = Date.now();
    await call(p1, 'request', s2, '/warm');
    await until(async () => ((await call(p1, 'peers')) as PeerInfo[]).some((p) => p.server === s2 && p.via === 'webrtc'), 'direct WebRTC link');
    const toDirect = Date.now() - started;

    // Raw data channel between the same pages.
    const offer = (await call(p1, 'rawRtcOffer')) as string;
    const answer = (await call(p2, 'rawRtcAnswer', offer)) as string;
    await call(p1, 'rawRtcFinish', answer);

    await call(p2, 'installEcho');
    await call(p1, 'rawRtcTimes', WARM_UP);
    await call(p1, 'timeLongStream', s2, WARM_UP);
    await call(p1, 'timeRequests', s2, WARM_UP);
    await call(p1, 'timeRequestsV1', s2, WARM_UP);
    // Alternate halves so that neither figure gets the quieter half of the run.
    const raw: number[] = [];
    const fed: number[] = [];
    const fedV1: number[] = [];
    const stream: number[] = [];
    for (let i = 0; i < 2; i++) {
      raw.push(...((await call(p1, 'rawRtcTimes', ROUNDS / 2)) as number[]));
      stream.push(...((await call(p1, 'timeLongStream', s2, ROUNDS / 2)) as number[]));
      fed.push(...((await call(p1, 'timeRequests', s2, ROUNDS / 2)) as number[]));
      fedV1.push(...((await call(p1, 'timeRequestsV1', s2, ROUNDS / 2)) as number[]));
    }
    for (const list of [raw, fed, fedV1, stream]) list.sort((a, b) => a - b);
    const rawLimit = (p: number) => ({ label: `raw RTCDataChannel p${p}`, value: percentile(raw, p), unit: 'ms' });
    await Promise.all([call(p1, 'stop'), call(p2, 'stop')]);
    return [
      { where: 'chromium', figure: 'p2p: first request until direct WebRTC link (via relay)', value: toDirect, unit: 'ms' },
      { where: 'chromium', figure: `p2p: federation request/response over WebRTC (/hometab/federation/2, one stream), p50 (${ROUNDS} rounds)`, value: percentile(fed, 50), unit: 'ms', limit: rawLimit(50) },
      { where: 'chromium', figure: `p2p: federation request/response over WebRTC (/hometab/federation/2), p99`, value: percentile(fed, 99), unit: 'ms', limit: rawLimit(99) },
      { where: 'chromium', figure: `p2p: the same over /hometab/federation/1 (a stream per request), p50`, value: percentile(fedV1, 50), unit: 'ms', limit: rawLimit(50) },
      { where: 'chromium', figure: `p2p: the same over /hometab/federation/1, p99`, value: percentile(fedV1, 99), unit: 'ms', limit: rawLimit(99) },
      { where: 'chromium', figure: 'p2p: echo on one long-lived libp2p stream, same link, p50', value: percentile(stream, 50), unit: 'ms', limit: rawLimit(50), note: 'libp2p stream floor, no stream per request' },
      { where: 'chromium', figure: 'p2p: echo on one long-lived libp2p stream, same link, p99', value: percentile(stream, 99), unit: 'ms', limit: rawLimit(99) },
    ];
  } finally {
    await browser.close();
    await relay.stop();
    await server.close();
  }
}

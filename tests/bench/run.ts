/**
 * `npm run bench`: runs every benchmark in Node and in real Chromium and
 * prints one table, each figure beside the limit it is measured against in the
 * same run.
 */
import '../../src/node/polyfills.js';
import { fileURLToPath } from 'node:url';
import { runCoreBench } from './core-bench.js';
import { runNodeHttpBench } from './node-http.js';
import { runP2pBench } from './p2p-bench.js';
import { replicationParts, runReplicationBench } from './replication-bench.js';
import { runJoinBench } from './join-bench.js';
import { runSimBench } from './sim-bench.js';
import { runE2eeBench } from './e2ee-bench.js';
import { runMediaBench } from './media-bench.js';
import { runAppBench } from './app-bench.js';
import { formatTable, type BenchRow } from './report.js';
import { bundleForBrowser, chromiumAvailable, launchChromium, openScriptPage } from '../support/chromium.js';

const only = process.argv.slice(2);
const wants = (section: string) => only.length === 0 || only.includes(section);
const rows: BenchRow[] = [];

async function inChromium(entry: string): Promise<BenchRow[]> {
  if (!chromiumAvailable()) {
    console.warn('chromium not found at /usr/bin/chromium: skipping browser figures');
    return [];
  }
  const browser = await launchChromium();
  try {
    const script = await bundleForBrowser(fileURLToPath(new URL(entry, import.meta.url)));
    const page = await openScriptPage(browser, script);
    const result = (await page.page.evaluate('window.benchDone', { timeout: 0 } as never)) as BenchRow[];
    await page.close();
    return result;
  } finally {
    await browser.close();
  }
}

if (wants('core')) {
  console.log('core (node)…');
  rows.push(...(await runCoreBench({ where: 'node' })));
  console.log('core (chromium)…');
  rows.push(...(await inChromium('./browser/core-entry.ts')));
}

if (wants('homeserver') || wants('http')) {
  console.log('homeserver (node, HTTP + SQLite)…');
  rows.push(...(await runNodeHttpBench()));
}

if (wants('homeserver') || wants('browser')) {
  console.log('homeserver (chromium, IndexedDB)…');
  rows.push(...(await inChromium('./browser/homeserver-entry.ts')));
}

if (wants('p2p')) {
  console.log('p2p (chromium, WebRTC through a Node relay)…');
  rows.push(...(await runP2pBench()));
}

if (wants('replication')) {
  console.log('replication (chromium, whole peers over IndexedDB and WebRTC through a Node relay)…');
  rows.push(...(await runReplicationBench()));
  if (replicationParts().has('join')) {
    console.log('replication: joining a room of 1,000 members and 10,000 events (node, in-process servers)…');
    rows.push(...(await runJoinBench()));
  }
}

if (wants('media')) {
  console.log('media (node, in-process servers: a remote file fetched over the federation chunk protocol)…');
  rows.push(...(await runMediaBench()));
}

if (wants('sim')) {
  console.log('simulation (node, memory network, virtual time; 50 and 200 servers, direct vs gossip)…');
  rows.push(...(await runSimBench()));
}

if (wants('e2ee')) {
  console.log('e2ee (node, matrix-js-sdk Rust crypto clients on homeservers over libp2p: encrypted vs unencrypted delivery, room key shared with 50 devices)…');
  rows.push(...(await runE2eeBench()));
}

if (wants('app')) {
  console.log('app (chromium, the built app as npm start serves it: cold start, first-load JS, scrolling a 100,000-event room)…');
  // APP_BENCH_EVENTS=cold,scroll shrinks the seeded rooms for a quick look (scroll 0 skips scrolling); the figures are for 10,000 and 100,000.
  // BENCH_APP=cold: the cold start only (no 100,000-event room, no scrolling); BENCH_APP_RUNS=N cold starts;
  // APP_BENCH_BACK=N: how many messages back the scroll goes (default 3,000).
  const [coldEvents, sized] = (process.env.APP_BENCH_EVENTS ?? '').split(',').map((n) => (n ? Number(n) : undefined));
  const scrollEvents = process.env.BENCH_APP === 'cold' ? 0 : sized;
  const coldRuns = Number(process.env.BENCH_APP_RUNS) || undefined;
  const scrollBack = Number(process.env.APP_BENCH_BACK) || undefined;
  rows.push(...(await runAppBench({ coldEvents, scrollEvents, scrollBack, coldRuns, profile: !!process.env.BENCH_PROFILE, screenshot: process.env.APP_BENCH_SCREENSHOT })));
}

console.log(formatTable(rows));

/**
 * Replication figures in real Chromium, whole peers (src/app/boot-peer.ts:
 * IndexedDB, homeserver, browser libp2p, replicator) in two pages of separate
 * contexts, connected through a Node relay and then directly over WebRTC:
 *
 * - tab-to-tab delivery: a message sent through one page's client-server API
 *   until the other page's /sync long-poll returns it (epoch clocks of the
 *   two renderer processes, sub-millisecond), p50/p99, beside a raw
 *   RTCDataChannel round trip between the same two pages in the same run;
 * - catch-up: the receiving page closes, the other sends 10,000 messages, the
 *   page reopens on the same profile and pulls them all; events/s from boot to
 *   the last event stored, beside the raw IndexedDB batched-write rate (500
 *   records of ~500 B per transaction) measured in that page in the same run;
 *   and the pull rate, events/s from the first catch-up beginning (right before
 *   its first page is asked for) to the last event stored, with the time before
 *   it (connection, extremities exchange, the heads' fetch) in its note;
 * - the raw data channel's bulk rate (1 MiB in 16 KiB messages, echoed), the
 *   wire's floor under a catch-up page;
 * - the wire's share of a catch-up alone: the same forward pages fetched again
 *   by the returned tab, parsed and identified but not stored, beside that raw
 *   bulk rate measured between the same two pages.
 *
 * BENCH_REPLICATION_PARTS=delivery,catchup,join (the default: all three) picks
 * the parts to run; the join figure is runJoinBench's (join-bench.ts).
 *
 * BENCH_PROFILE=1 adds where the time goes: delivery split into the sender's
 * own send, the wire, the receiving handler and the /sync wake-up; the
 * returning tab's federation requests on a timeline; CPU profiles of both
 * pages over the catch-up (with BENCH_PROFILE_TIMELINE=1 also per 50 ms, the
 * functions most sampled).
 */
import { randomBytes } from 'node:crypto';
import type { Page } from 'playwright-core';
import { chromiumAvailable, launchChromium } from '../support/chromium.js';
import { createRelay } from '../../src/p2p/relay.js';
import { call, directTo, servePeerEntry, until } from '../p2p/peer-pages.js';
import { percentile, type BenchRow } from './report.js';

/** BENCH_PROFILE=1: CPU profiles of pages over a phase, printed as the heaviest functions by self time. */
let timelineZero = 0;
async function startProfiles(pages: Page[]): Promise<{ stop(names: string[]): Promise<void> }> {
  const sessions = await Promise.all(pages.map((p) => p.context().newCDPSession(p)));
  const started: number[] = [];
  for (const s of sessions) {
    await s.send('Profiler.enable');
    await s.send('Profiler.setSamplingInterval', { interval: 200 });
    await s.send('Profiler.start');
    started.push(Date.now());
  }
  return {
    async stop(names) {
      for (const [i, s] of sessions.entries()) {
        const { profile } = (await s.send('Profiler.stop')) as unknown as { profile: { nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number; children?: number[] }>; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] } };
        if (process.env.BENCH_PROFILE_TIMELINE) {
          // Timeline: per 50 ms bucket, the innermost named functions most sampled. Times are from boot, taking the
          // epoch when Profiler.start returned as the profile's start (it began a little earlier: read with care).
          const par = new Map<number, number>();
          for (const n of profile.nodes) for (const c of n.children ?? []) par.set(c, n.id);
          const byId2 = new Map(profile.nodes.map((n) => [n.id, n]));
          const label = (id: number): string => {
            const names: string[] = [];
            for (let x: number | undefined = id; x !== undefined && names.length < 3; x = par.get(x)) {
              const f = byId2.get(x)!.callFrame;
              if (f.functionName === '(idle)') return 'idle';
              if (f.functionName && (f.url.endsWith('entry.js') || names.length === 0)) names.push(f.functionName);
            }
            return names.join('<');
          };
          let t = 0;
          const buckets = new Map<number, Map<string, number>>();
          profile.samples.forEach((id, k) => {
            t += profile.timeDeltas[k]!;
            const b = Math.floor(t / 50_000);
            const m = buckets.get(b) ?? new Map<string, number>();
            const l = label(id);
            m.set(l, (m.get(l) ?? 0) + 1);
            buckets.set(b, m);
          });
          for (const [b, m] of [...buckets].sort((x, y) => x[0] - y[0])) {
            const total = [...m.values()].reduce((x, y) => x + y, 0);
            const top = [...m].sort((x, y) => y[1] - x[1]).slice(0, 3).map(([k, v]) => `${k} ${((100 * v) / total).toFixed(0)}%`).join(' | ');
            console.log(`tl ${names[i]} +${(started[i]! + b * 50 - timelineZero).toFixed(0).padStart(6)} ${top}`);
          }
        }
        const self = new Map<string, number>();
        let total = 0;
        for (const n of profile.nodes) {
          const key = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}:${n.callFrame.lineNumber}`;
          self.set(key, (self.get(key) ?? 0) + (n.hitCount ?? 0));
          total += n.hitCount ?? 0;
        }
        // Inclusive time of named bundle functions (each counted once per stack).
        const parent = new Map<number, number>();
        for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
        const byId = new Map(profile.nodes.map((n) => [n.id, n]));
        const inclusive = new Map<string, number>();
        for (const n of profile.nodes) {
          if (!n.hitCount || n.callFrame.functionName === '(idle)') continue;
          const names = new Set<string>();
          for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
            const f = byId.get(id)!.callFrame;
            if (f.url.endsWith('entry.js') && f.functionName) names.add(`${f.functionName}:${f.lineNumber}`);
          }
          for (const k of names) inclusive.set(k, (inclusive.get(k) ?? 0) + n.hitCount);
        }
        console.log(`--- inclusive, ${names[i]}`);
        for (const [k, v] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
        console.log(`--- profile of ${names[i]}: ${total} samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s`);
        for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
      }
    },
  };
}

/** The parts of the replication figures BENCH_REPLICATION_PARTS asks for (all when unset). */
export function replicationParts(): Set<'delivery' | 'catchup' | 'join'> {
  const asked = (process.env.BENCH_REPLICATION_PARTS ?? 'delivery,catchup,join').split(',').map((p) => p.trim());
  const parts = new Set<'delivery' | 'catchup' | 'join'>();
  for (const p of asked) {
    if (p === 'delivery' || p === 'catchup' || p === 'join') parts.add(p);
    else if (p) throw new Error(`BENCH_REPLICATION_PARTS: unknown part ${JSON.stringify(p)} (delivery, catchup, join)`);
  }
  return parts;
}

export interface ReplicationBenchOptions {
  /** Messages timed for delivery. @default 300 */
  deliveries?: number;
  /** Events the returning tab pulls. @default BENCH_CATCHUP_EVENTS or 10_000 */
  catchUpEvents?: number;
}

export async function runReplicationBench(options: ReplicationBenchOptions = {}): Promise<BenchRow[]> {
  if (!chromiumAvailable()) {
    console.warn('chromium not found at /usr/bin/chromium: skipping replication figures');
    return [];
  }
  const parts = replicationParts();
  if (!parts.has('delivery') && !parts.has('catchup')) return [];
  const deliveries = options.deliveries ?? 300;
  const catchUpEvents = options.catchUpEvents ?? (Number(process.env.BENCH_CATCHUP_EVENTS) || 10_000);
  const server = await servePeerEntry();
  const relay = await createRelay();
  const browser = await launchChromium();
  const rows: BenchRow[] = [];
  const where = 'chromium';
  try {
    const relays = relay.addresses();
    const [c1, c2] = [await browser.newContext(), await browser.newContext()];
    const p1 = await server.open(c1);
    let p2 = await server.open(c2);
    const tag = randomBytes(4).toString('hex');
    const s1 = await call(p1, 'boot', { profile: `bench-a-${tag}`, relays, trace: !!process.env.BENCH_PROFILE });
    const s2 = await call(p2, 'boot', { profile: `bench-b-${tag}`, relays, trace: !!process.env.BENCH_PROFILE });
    for (const p of [p1, p2]) await until('relay reservation', () => call(p, 'reachable'), (v) => v);
    const alice = await call(p1, 'user', 'alice');
    const bob = await call(p2, 'user', 'bob');
    const roomId = await call(p1, 'createRoom', alice);
    await call(p1, 'invite', alice, roomId, bob);
    await until('invite', () => call(p2, 'invites', bob), (v) => v.includes(roomId));
    await call(p2, 'join', bob, roomId, [s1]);
    await until('join seen by alice', () => call(p1, 'members', alice, roomId), (v) => v.length === 2);
    await until('direct WebRTC link', () => call(p1, 'libp2pPeers'), directTo(s2));
    await until('direct WebRTC link', () => call(p2, 'libp2pPeers'), directTo(s1));

    if (parts.has('delivery')) {
      // Raw data channel between the same two pages: the limit.
      const offer = await call(p1, 'rawRtcOffer');
      await call(p1, 'rawRtcFinish', await call(p2, 'rawRtcAnswer', offer));
      await call(p1, 'rawRtcTimes', 100);

      // Delivery: warm up, then alternate halves with the raw round trip.
      await call(p2, 'startReceiving', bob);
      await call(p1, 'sendSeries', alice, roomId, 'warm-', 30, 20);
      await until('warm-up delivered', () => call(p2, 'arrived'), (n) => n >= 30, 30_000);
      const raw: number[] = [];
      const latencies: number[] = [];
      for (let half = 0; half < 2; half++) {
        raw.push(...(await call(p1, 'rawRtcTimes', 500)));
        const prefix = `d${half}-`;
        const sent = await call(p1, 'sendSeries', alice, roomId, prefix, deliveries / 2, 20);
        const expected = 30 + (half + 1) * (deliveries / 2);
        await until('deliveries', () => call(p2, 'arrived'), (n) => n >= expected, 60_000);
        const arrivals = await call(p2, 'arrivalTimes');
        for (const [body, at] of Object.entries(sent)) if (arrivals[body] !== undefined) latencies.push(arrivals[body]! - at);
    }
    await call(p2, 'stopReceiving');
    if (process.env.BENCH_PROFILE) {
      const sends = (await call(p2, 'traced')).filter((t) => t.dir === 'in' && t.path.startsWith('/_matrix/federation/v1/send/')).map((t) => t.ms).sort((x, y) => x - y);
      console.log(`--- delivery: inbound PUT /send handled by the receiving homeserver in p50 ${percentile(sends, 50).toFixed(1)} ms, p99 ${percentile(sends, 99).toFixed(1)} ms (${sends.length} transactions)`);
    }
    if (process.env.BENCH_PROFILE) {
      // Where a delivery's time goes: the sender's own send until its outbox puts the transaction on the wire, the
      // wire until the receiving homeserver's handler starts, the handler, and its end until the /sync long-poll
      // returns (epoch clocks of both pages; each message matched with the first transaction sent after it).
      const ins = (await call(p2, 'tracedEpoch')).filter((t) => t.dir === 'in' && t.path.startsWith('/_matrix/federation/v1/send/'));
      const outs = (await call(p1, 'tracedEpoch')).filter((t) => t.dir === 'out' && t.path.startsWith('/_matrix/federation/v1/send/'));
      const arrivals = await call(p2, 'arrivalTimes');
      const stages = { 'send → outbox request': [] as number[], 'outbox request → handler start': [] as number[], 'receiving handler': [] as number[], 'handler end → /sync returned': [] as number[] };
      for (const [body, at] of Object.entries(await call(p1, 'sendTimes'))) {
        const out = outs.find((o) => o.epoch >= at);
        const handled = ins.find((o) => o.epoch >= at);
        const arrived = arrivals[body];
        if (!body.startsWith('d') || !out || !handled || arrived === undefined) continue;
        stages['send → outbox request'].push(out.epoch - at);
        stages['outbox request → handler start'].push(handled.epoch - out.epoch);
        stages['receiving handler'].push(handled.ms);
        stages['handler end → /sync returned'].push(arrived - (handled.epoch + handled.ms));
      }
      for (const [stage, v] of Object.entries(stages)) {
        v.sort((x, y) => x - y);
        console.log(`--- delivery stage ${stage}: p50 ${percentile(v, 50).toFixed(2)} ms, p90 ${percentile(v, 90).toFixed(2)} ms (${v.length} msgs)`);
      }
    }
    // The wire's floor for a large answer (a catch-up page is about 0.7 MB): 1 MiB in 16 KiB messages, echoed.
    const bulk: number[] = [];
    for (let i = 0; i < 3; i++) bulk.push(await call(p1, 'rawRtcBulkMs', 1 << 20));
    bulk.sort((x, y) => x - y);
    const rawBulkMiBs = 1000 / bulk[1]!;
    raw.sort((a, b) => a - b);
    latencies.sort((a, b) => a - b);
    rows.push(
      { where, figure: `replication: tab-to-tab delivery, send → other tab's /sync, p50 (${latencies.length} msgs, WebRTC)`, value: percentile(latencies, 50), unit: 'ms', limit: { label: `goal 5 ms; raw RTCDataChannel round trip p50`, value: percentile(raw, 50), unit: 'ms' } },
      { where, figure: 'replication: tab-to-tab delivery, p99', value: percentile(latencies, 99), unit: 'ms', limit: { label: `goal 25 ms; raw RTCDataChannel round trip p99`, value: percentile(raw, 99), unit: 'ms' } },
      { where, figure: 'replication: raw RTCDataChannel bulk, 1 MiB in 16 KiB messages echoed (the wire under a catch-up page)', value: rawBulkMiBs, unit: 'MiB/s', note: `median of 3: ${bulk[1]!.toFixed(0)} ms per MiB and back` },
    );
    }

    if (parts.has('catchup')) {

      // Catch-up: bob's tab closes, alice writes, bob's tab returns on the same profile.
      const bobProfile = `bench-b-${tag}`;
      await call(p2, 'close');
      await p2.close();
      const written = await call(p1, 'sendMany', alice, roomId, 'c-', catchUpEvents);
      rows.push({ where, figure: 'replication: local sends/s while the peer is away (IndexedDB, sequential)', value: written.rate, unit: '/s' });
      p2 = await server.open(c2);
      const rawIdb = await call(p2, 'rawIdbWrites', 500, 10_000);
      await call(p2, 'expectEvents', written.ids);
      const profiling = process.env.BENCH_PROFILE ? await startProfiles([p1, p2]) : undefined;
      const t0 = Date.now();
      timelineZero = t0;
      await call(p2, 'boot', { profile: bobProfile, relays, trace: !!process.env.BENCH_PROFILE });
      const booted = Date.now() - t0;
      if (process.env.BENCH_PROFILE) {
        // Until the direct link is back, federation crosses the relayed connection.
        void until('direct WebRTC link back', () => call(p2, 'libp2pPeers').catch(() => []), directTo(s1), 60_000).then(
          () => console.log(`--- direct WebRTC link back ${Date.now() - t0} ms after boot began`),
          () => undefined,
        );
    }
    await until('catch-up', () => call(p2, 'hasLastExpected'), (v) => v, 600_000, 100);
    const done = Date.now();
    const seconds = (done - t0) / 1000;
    const stored = await call(p2, 'storedCount');
    if (stored !== catchUpEvents) throw new Error(`bench: the returning tab holds ${stored} of ${catchUpEvents} events`);
    if (profiling) {
      await profiling.stop(['sender', 'returning tab']);
      const byPath = new Map<string, { n: number; ms: number; max: number; pdus: number }>();
      for (const t of await call(p2, 'traced')) {
        const k = `${t.dir} ${t.path}`;
        const e = byPath.get(k) ?? { n: 0, ms: 0, max: 0, pdus: 0 };
        e.n++;
        e.ms += t.ms;
        e.max = Math.max(e.max, t.ms);
        e.pdus += t.pdus ?? 0;
        byPath.set(k, e);
      }
      for (const t of await call(p2, 'tracedEpoch')) if (t.dir === 'out') console.log(`--- out ${t.path.slice(0, 60)} at +${(t.epoch - t0).toFixed(0)} ms after boot began, took ${t.ms.toFixed(0)} ms`);
      console.log('--- federation requests of the returning tab (count, total ms, max ms, PDUs)');
      for (const [k, e] of byPath) console.log(`${k}: ${e.n}, ${e.ms.toFixed(0)} ms, max ${e.max.toFixed(0)} ms, ${e.pdus} PDUs`);
      console.log(JSON.stringify(await call(p2, 'catchUpLog')).slice(0, 3000));
    }
    const log = await call(p2, 'catchUpLog');
    const rounds = log.filter((p) => p.state === 'done').length;
    // The pull alone: from the first catch-up that began fetching (right before its first page request, after the
    // connection, the extremities exchange and the heads' fetch) until the last event was stored.
    const pullStart = Math.min(...log.filter((p) => p.state === 'running').map((p) => p.epoch));
    const pullSeconds = (done - pullStart) / 1000;
    rows.push(
      {
        where,
        figure: `replication: catch-up of a returning tab, ${catchUpEvents.toLocaleString('en-US')} events (boot → all stored)`,
        value: catchUpEvents / seconds,
        unit: 'events/s',
        limit: { label: 'goal 5,000 events/s; raw IndexedDB 500 records/txn', value: rawIdb, unit: 'records/s' },
        note: `${seconds.toFixed(1)} s total; boot ${booted} ms; ${rounds} catch-up rounds done`,
      },
      {
        where,
        figure: `replication: catch-up pull rate, ${catchUpEvents.toLocaleString('en-US')} events (first catch-up began → all stored)`,
        value: catchUpEvents / pullSeconds,
        unit: 'events/s',
        limit: { label: 'raw IndexedDB 500 records/txn', value: rawIdb, unit: 'records/s' },
        note: `${pullSeconds.toFixed(1)} s pulling; before it ${(pullStart - t0).toFixed(0)} ms from boot (connection, extremities, heads)`,
      },
    );
    }
    if (parts.has('catchup')) {
      // The wire's share alone, once the writes are out of the way: the same forward pages fetched again and
      // identified, not stored, beside the raw data channel's bulk rate between the same two pages.
      const offer = await call(p1, 'rawRtcOffer');
      await call(p1, 'rawRtcFinish', await call(p2, 'rawRtcAnswer', offer));
      const bulk: number[] = [];
      for (let i = 0; i < 3; i++) bulk.push(await call(p1, 'rawRtcBulkMs', 1 << 20));
      bulk.sort((x, y) => x - y);
      const wire = await call(p2, 'forwardPagesOnly', s1, roomId);
      const mib = wire.bytes / (1 << 20);
      rows.push({
        where,
        figure: `replication: forward pages fetched and identified, not stored (${wire.events.toLocaleString('en-US')} events in ${wire.pages} pages: serving, wire, parse, event IDs)`,
        value: wire.events / (wire.ms / 1000),
        unit: 'events/s',
        limit: { label: 'raw RTCDataChannel bulk, 1 MiB in 16 KiB messages echoed', value: 1000 / bulk[1]!, unit: 'MiB/s' },
        note: `${mib.toFixed(1)} MiB of JSON in ${(wire.ms / 1000).toFixed(2)} s (${(mib / (wire.ms / 1000)).toFixed(2)} MiB/s)`,
      });
    }
    await call(p1, 'close');
    await call(p2, 'close');
    return rows;
  } finally {
    await browser.close();
    await relay.stop();
    await server.close();
  }
}

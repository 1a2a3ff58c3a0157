/**
 * Benchmarks of the event core, written once and run both in Node and in
 * Chromium: Ed25519 raw rates per backend, full event verification against the
 * raw WebCrypto verify rate of the same bytes, canonical JSON + sha256 on 1 KB
 * events against JSON.stringify + sha256, and state resolution on synthetic
 * forks against its goal.
 */
import {
  canonicalJsonBytes,
  createEd25519,
  createSigner,
  ed25519Sign,
  ed25519Verify,
  redactEvent,
  sha256,
  signEvent,
  verifyEvent,
  webCryptoHasEd25519,
  type PDU,
} from '../../src/core/index.js';
import { benchStateRes } from './fixtures/synthetic-fork.js';
import { ratePerSecond, type BenchRow } from './report.js';

const SEED = new Uint8Array(32).map((_, i) => i + 1);
const BATCH = 256;
/** Alternating raw/event rounds for the event verification figure. */
const PAIRED_ROUNDS = 5;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A plausible 1 KB message event. */
function messageEvent(i: number): PDU {
  return {
    room_id: '!Ab3dEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde',
    sender: '@alice:' + 'a'.repeat(64),
    type: 'm.room.message',
    content: { msgtype: 'm.text', body: `message ${i} `.padEnd(700, 'lorem ipsum dolor sit amet ') },
    origin_server_ts: 1_760_000_000_000 + i,
    depth: 100 + i,
    prev_events: ['$' + 'p'.repeat(43)],
    auth_events: ['$' + 'a'.repeat(43), '$' + 'b'.repeat(43), '$' + 'c'.repeat(43)],
  };
}

async function concurrentRate(items: number, run: (i: number) => Promise<unknown>, ms: number): Promise<number> {
  let next = 0;
  return ratePerSecond(
    async () => {
      const batch: Promise<unknown>[] = [];
      for (let k = 0; k < BATCH; k++) batch.push(run(next++ % items));
      await Promise.all(batch);
    },
    ms,
    BATCH,
  );
}

export interface CoreBenchOptions {
  where: string;
  /** Milliseconds per rate measurement. @default 1000 */
  ms?: number;
  /** Conflicted-set sizes for state resolution. @default [100, 1000, 10000] */
  stateResSizes?: number[];
}

export async function runCoreBench(options: CoreBenchOptions): Promise<BenchRow[]> {
  const { where } = options;
  const ms = options.ms ?? 1000;
  const rows: BenchRow[] = [];
  const message = new Uint8Array(600).fill(7);

  const hasWebCrypto = await webCryptoHasEd25519();
  const backends = hasWebCrypto ? (['webcrypto', 'noble'] as const) : (['noble'] as const);
  const rawRate: Record<string, { sign: number; verify: number }> = {};
  for (const backend of backends) {
    const signature = await ed25519Sign(SEED, message, { backend });
    const signer = await createSigner(SEED, 'bench', 'ed25519:1', { ed25519: createEd25519({ backend }) });
    const sign = await ratePerSecond(() => signer.sign(message), ms);
    const publicKey = signer.publicKey;
    const verify = await concurrentRate(1, () => ed25519Verify(publicKey, message, signature, { backend }), ms);
    rawRate[backend] = { sign, verify };
  }
  const reference = rawRate[backends[0]]!;
  for (const backend of backends) {
    const r = rawRate[backend]!;
    const isRef = backend === backends[0];
    rows.push({ where, figure: `Ed25519 sign (${backend})`, value: r.sign, unit: '/s', limit: isRef ? undefined : { label: `raw ${backends[0]} sign`, value: reference.sign, unit: '/s' } });
    rows.push({ where, figure: `Ed25519 verify (${backend}, ${BATCH} concurrent)`, value: r.verify, unit: '/s', limit: isRef ? undefined : { label: `raw ${backends[0]} verify`, value: reference.verify, unit: '/s' } });
  }

  // Full event verification: content hash + redaction + canonical JSON + signature, on distinct signed events.
  const signer = await createSigner(SEED, 'bench.example', 'ed25519:1');
  const events: PDU[] = [];
  for (let i = 0; i < 1024; i++) events.push(await signEvent(messageEvent(i), signer, '12'));
  const redactedBytes = events.map((e) => {
    const { signatures: _s, unsigned: _u, ...rest } = redactEvent(e, '12') as Record<string, unknown>;
    return canonicalJsonBytes(rest);
  });
  const { decodeBase64 } = await import('../../src/core/index.js');
  const signatures = events.map((e) => decodeBase64(e.signatures!['bench.example']!['ed25519:1']!));
  // Raw and event rates are measured in alternating rounds (raw first, then event first, ...) so a
  // change in machine load hits both alike; each figure is the median of its rounds, the ratio the
  // median of the per-round ratios.
  const rawRounds: number[] = [];
  const eventRounds: number[] = [];
  const measureRaw = async () => rawRounds.push(await concurrentRate(events.length, (i) => ed25519Verify(signer.publicKey, redactedBytes[i]!, signatures[i]!), ms / 2));
  const measureEvents = async () =>
    eventRounds.push(
      await concurrentRate(
        events.length,
        async (i) => {
          const result = await verifyEvent(events[i]!, '12', 'bench.example', 'ed25519:1', signer.publicKey);
          if (!result.contentHashOk || !result.signatureOk) throw new Error('event failed verification in bench');
        },
        ms / 2,
      ),
    );
  for (let round = 0; round < PAIRED_ROUNDS; round++) {
    if (round % 2 === 0) {
      await measureRaw();
      await measureEvents();
    } else {
      await measureEvents();
      await measureRaw();
    }
  }
  const rawSameBytes = median(rawRounds);
  const eventRate = median(eventRounds);
  const ratio = median(eventRounds.map((rate, i) => rate / rawRounds[i]!));
  rows.push({ where, figure: 'raw verify of the same signed bytes', value: rawSameBytes, unit: '/s' });
  rows.push({
    where,
    figure: 'event verification (hash + signature)',
    value: eventRate,
    unit: 'events/s',
    limit: { label: 'raw verify, same bytes', value: rawSameBytes, unit: '/s' },
    note: `${Math.round(100 * ratio)}% of raw (goal >= 80%; median of ${PAIRED_ROUNDS} paired rounds)`,
  });

  // Canonical JSON + sha256 on 1 KB events, against JSON.stringify + sha256 of the same events.
  const kb = events.map((e) => ({ ...e }));
  const bytesPerEvent = canonicalJsonBytes(kb[0]).byteLength;
  let k = 0;
  const canonicalRate = await ratePerSecond(() => sha256(canonicalJsonBytes(kb[k++ % kb.length])), ms);
  const encoder = new TextEncoder();
  const plainRate = await ratePerSecond(() => sha256(encoder.encode(JSON.stringify(kb[k++ % kb.length]))), ms);
  rows.push({
    where,
    figure: `canonical JSON + sha256 (${bytesPerEvent} B events)`,
    value: canonicalRate,
    unit: 'events/s',
    limit: { label: 'JSON.stringify + sha256', value: plainRate, unit: 'events/s' },
    note: `${((canonicalRate * bytesPerEvent) / 1e6).toFixed(1)} MB/s`,
  });

  const sizes = options.stateResSizes ?? [100, 1000, 10000];
  let previous: { n: number; t: number } | undefined;
  for (const n of sizes) {
    const t = await benchStateRes(n);
    const growth = previous ? (t / previous.t) / ((n * Math.log2(n)) / (previous.n * Math.log2(previous.n))) : undefined;
    rows.push({
      where,
      figure: `state res, ~${n.toLocaleString('en-US')} conflicted, 10k auth chain`,
      value: t,
      unit: 'ms',
      limit: n === 1000 ? { label: 'goal', value: 100, unit: 'ms' } : undefined,
      note: growth === undefined ? undefined : `growth ${growth.toFixed(2)}x of n log n`,
    });
    previous = { n, t };
  }
  return rows;
}

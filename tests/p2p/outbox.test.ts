// The outbox sender alone, over a recording transport and a hand-driven clock: transaction shape and limits,
// stable transaction IDs across a reload, backoff with jitter and its reset when the peer comes online, 400 versus
// 5xx, gossip-mode PDUs acknowledged after one publish while EDUs still go directly, queue-length events.
import { describe, expect, it } from 'vitest';
import { P2PError } from '../../src/p2p/errors.js';
import { createOutboxSender, type OutboxQueueState } from '../../src/p2p/outbox.js';
import { silentLog, type ReplicatorClock } from '../../src/p2p/replication-port.js';
import { emitPeerEvent, type FederationRequest, type FederationResponse, type FederationTransport } from '../../src/p2p/transport.js';
import { createMemoryStorage } from '../../src/storage/memory/index.js';
import type { Storage } from '../../src/storage/types.js';

function manualClock() {
  let now = 0;
  const timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  const clock: ReplicatorClock & { advance(ms: number): void; delays: number[] } = {
    delays: [],
    now: () => now,
    setTimer(fn, ms) {
      clock.delays.push(ms);
      const timer = { at: now + ms, fn, live: true };
      timers.push(timer);
      return () => (timer.live = false);
    },
    random: () => 0.5,
    advance(ms) {
      now += ms;
      for (const t of timers.splice(0)) {
        if (t.live && t.at <= now) t.fn();
        else if (t.live) timers.push(t);
      }
    },
  };
  return clock;
}

function recordingTransport(answer: (server: string, request: FederationRequest) => FederationResponse | Promise<FederationResponse>) {
  const sent: Array<{ server: string; request: FederationRequest }> = [];
  const transport: FederationTransport = {
    localServer: 'me',
    events: new EventTarget(),
    async request(server, request) {
      sent.push({ server, request: JSON.parse(JSON.stringify(request)) });
      return answer(server, request);
    },
    handle() {},
    peers: () => [],
    async publish() {},
    subscribe: () => () => {},
    async close() {},
  };
  return { transport, sent };
}

const pdu = (i: number, roomId = '!r:me') => ({ pdu: { room_id: roomId, type: 'm.room.message', content: { i }, hashes: { sha256: `h${i}` } } });
const edu = (i: number) => ({ edu: { edu_type: 'm.typing', content: { i } } });
const settle = () => new Promise((r) => setTimeout(r, 20));

async function enqueue(storage: Storage, destination: string, payloads: unknown[]): Promise<void> {
  await storage.write(async (txn) => {
    for (const p of payloads) await txn.outbound.enqueue(destination, p as never);
  });
}

function sender(storage: Storage, transport: FederationTransport, clock: ReplicatorClock, options: { gossip?: boolean; published?: unknown[]; events?: EventTarget } = {}) {
  return createOutboxSender({
    storage,
    transport,
    clock,
    log: silentLog,
    events: options.events ?? new EventTarget(),
    gossipRoom: () => options.gossip ?? false,
    onGossip: (_roomId, p) => options.published?.push(p),
  });
}

describe('outbox sender', () => {
  it('sends the queue as spec-shaped transactions of at most 50 PDUs and 100 EDUs, acknowledging each on 200', async () => {
    const storage = createMemoryStorage();
    const { transport, sent } = recordingTransport(() => ({ status: 200, body: { pdus: {} } }));
    await enqueue(storage, 'x', [...Array.from({ length: 120 }, (_, i) => pdu(i)), ...Array.from({ length: 150 }, (_, i) => edu(i))]);
    const outbox = sender(storage, transport, manualClock());
    await outbox.start();
    await settle();
    const bodies = sent.map((s) => s.request.body as { origin: string; origin_server_ts: number; pdus: unknown[]; edus: unknown[] });
    expect(sent.every((s) => s.server === 'x' && s.request.method === 'PUT' && s.request.path.startsWith('/_matrix/federation/v1/send/'))).toBe(true);
    expect(bodies.map((b) => [b.pdus.length, b.edus.length])).toEqual([[50, 0], [50, 0], [20, 100], [0, 50]]);
    expect(bodies.every((b) => b.origin === 'me' && typeof b.origin_server_ts === 'number')).toBe(true);
    expect(await storage.read((txn) => txn.outbound.destinations())).toEqual([]);
    outbox.stop();
  });

  it('leaves a backlog to catch-up: of each page only the newest PDU of each room, state PDUs and EDUs go', async () => {
    const storage = createMemoryStorage();
    const { transport, sent } = recordingTransport(() => ({ status: 200, body: { pdus: {} } }));
    const state = { pdu: { room_id: '!r:me', type: 'm.room.topic', state_key: '', content: { topic: 't' }, hashes: { sha256: 'topic' } } };
    // Two rooms interleaved, a state event and an EDU among them; more PDUs than `backlogPdus`.
    const queue = [...Array.from({ length: 150 }, (_, i) => pdu(i, i % 2 ? '!s:me' : '!r:me')), state, edu(0), ...Array.from({ length: 100 }, (_, i) => pdu(150 + i))];
    await enqueue(storage, 'x', queue);
    const outbox = createOutboxSender({ storage, transport, clock: manualClock(), log: silentLog, events: new EventTarget(), gossipRoom: () => false, onGossip: () => {}, backlogPdus: 200 });
    await outbox.start();
    await settle();
    const bodies = sent.map((s) => s.request.body as { pdus: unknown[]; edus: unknown[] });
    expect(bodies.flatMap((b) => b.pdus)).toEqual([pdu(149, '!s:me').pdu, state.pdu, pdu(249).pdu]);
    expect(bodies.flatMap((b) => b.edus)).toEqual([edu(0).edu]);
    expect(await storage.read((txn) => txn.outbound.destinations())).toEqual([]);
    outbox.stop();
  });

  it('sends a queue read from storage with no more PDUs than `backlogPdus` whole', async () => {
    const storage = createMemoryStorage();
    const { transport, sent } = recordingTransport(() => ({ status: 200, body: { pdus: {} } }));
    await enqueue(storage, 'x', Array.from({ length: 200 }, (_, i) => pdu(i)));
    const outbox = createOutboxSender({ storage, transport, clock: manualClock(), log: silentLog, events: new EventTarget(), gossipRoom: () => false, onGossip: () => {}, backlogPdus: 200 });
    await outbox.start();
    await settle();
    expect(sent.flatMap((s) => (s.request.body as { pdus: unknown[] }).pdus)).toHaveLength(200);
    outbox.stop();
  });

  it('sends a freshly committed record at once, from the commit notice, without reading the queue back', async () => {
    const storage = createMemoryStorage();
    let reads = 0;
    const counted: Storage = Object.assign(Object.create(storage) as Storage, {
      read: <T>(fn: Parameters<Storage['read']>[0]) => {
        reads++;
        return storage.read(fn) as Promise<T>;
      },
    });
    let release: (() => void) | undefined;
    const { transport, sent } = recordingTransport(() => new Promise<FederationResponse>((resolve) => (release = () => resolve({ status: 200, body: {} }))));
    await enqueue(storage, 'x', [pdu(0)]);
    const outbox = sender(counted, transport, manualClock());
    await outbox.start();
    await settle();
    expect(sent).toHaveLength(1); // the queue as found at start: read once
    release!();
    await settle();
    const readsBefore = reads;
    // Committed while nothing is in flight: on the wire before the write's own promise settles.
    const written = enqueue(storage, 'x', [pdu(1)]);
    let onWireFirst = false;
    await written.then(() => (onWireFirst = sent.length === 2));
    expect(onWireFirst).toBe(true);
    // Committed while that one is in flight: they wait for it, then go together.
    await enqueue(storage, 'x', [pdu(2)]);
    await enqueue(storage, 'x', [pdu(3)]);
    expect(sent).toHaveLength(2);
    release!();
    await settle();
    expect(sent).toHaveLength(3);
    expect((sent[2]!.request.body as { pdus: unknown[] }).pdus).toEqual([pdu(2).pdu, pdu(3).pdu]);
    release!();
    await settle();
    expect(reads).toBe(readsBefore);
    // The acknowledgements reached storage all the same.
    expect(await storage.read((txn) => txn.outbound.peek('x'))).toEqual([]);
    expect(outbox.idle()).toBe(true);
    outbox.stop();
  });

  it('reads the queue again when an acknowledgement could not be written, and sends what is left', async () => {
    const storage = createMemoryStorage();
    let failAcks = true;
    const flaky: Storage = Object.assign(Object.create(storage) as Storage, {
      write: <T>(fn: Parameters<Storage['write']>[0]) => (failAcks ? Promise.reject(new Error('disk full')) : (storage.write(fn) as Promise<T>)),
    });
    const { transport, sent } = recordingTransport(() => ({ status: 200, body: {} }));
    await enqueue(storage, 'x', [pdu(0)]);
    const outbox = sender(flaky, transport, manualClock());
    await outbox.start();
    await settle();
    expect(sent).toHaveLength(1);
    failAcks = false;
    await enqueue(storage, 'x', [pdu(1)]);
    await settle();
    // The unacknowledged record comes back from storage and goes again (the receiver deduplicates it).
    expect(sent.slice(1).flatMap((s) => (s.request.body as { pdus: unknown[] }).pdus)).toEqual([pdu(0).pdu, pdu(1).pdu]);
    expect(await storage.read((txn) => txn.outbound.peek('x'))).toEqual([]);
    outbox.stop();
  });

  it('resends unacknowledged records after a reload under the same transaction ID', async () => {
    const storage = createMemoryStorage();
    const first = recordingTransport(() => {
      throw new P2PError('UNREACHABLE', 'down');
    });
    await enqueue(storage, 'x', [pdu(1), pdu(2)]);
    const before = sender(storage, first.transport, manualClock());
    await before.start();
    await settle();
    before.stop();
    const second = recordingTransport(() => ({ status: 200, body: {} }));
    const after = sender(storage, second.transport, manualClock());
    await after.start();
    await settle();
    expect(second.sent[0]!.request.path).toBe(first.sent[0]!.request.path);
    expect(await storage.read((txn) => txn.outbound.peek('x'))).toEqual([]);
    after.stop();
  });

  it('backs off exponentially with jitter, and a peer coming online ends the wait', async () => {
    const storage = createMemoryStorage();
    let up = false;
    const { transport, sent } = recordingTransport(() => {
      if (!up) throw new P2PError('UNREACHABLE', 'down');
      return { status: 200, body: {} };
    });
    const clock = manualClock();
    const outbox = sender(storage, transport, clock);
    await outbox.start();
    await enqueue(storage, 'x', [pdu(1)]);
    await settle();
    for (let i = 0; i < 3; i++) {
      clock.advance(60_000);
      await settle();
    }
    // random() = 0.5 and jitter 0.5: each delay is 75% of 500 ms × 2^(n−1).
    expect(clock.delays.slice(0, 4)).toEqual([375, 750, 1500, 3000]);
    expect(sent).toHaveLength(4);
    // New records while backing off wait for the retry...
    await enqueue(storage, 'x', [pdu(2)]);
    await settle();
    expect(sent).toHaveLength(4);
    // ...but the peer coming online sends at once.
    up = true;
    emitPeerEvent(transport.events, 'peer:online', { server: 'x', direct: true, via: 'memory' });
    await settle();
    expect(sent).toHaveLength(5);
    expect((sent[4]!.request.body as { pdus: unknown[] }).pdus).toHaveLength(2);
    expect(outbox.state()[0]).toMatchObject({ destination: 'x', failures: 0, queued: 0, inFlight: false });
    outbox.stop();
  });

  it('drops a batch the receiver refuses with 400 and retries one that failed with 500', async () => {
    const storage = createMemoryStorage();
    const statuses = [500, 400, 200];
    const { transport, sent } = recordingTransport(() => ({ status: statuses.shift() ?? 200, body: {} }));
    const clock = manualClock();
    const outbox = sender(storage, transport, clock);
    await outbox.start();
    await enqueue(storage, 'x', [pdu(1)]);
    await settle();
    clock.advance(1_000);
    await settle();
    expect(sent).toHaveLength(2);
    expect(await storage.read((txn) => txn.outbound.peek('x'))).toEqual([]);
    outbox.stop();
  });

  it('publishes gossip-room PDUs once and acknowledges them; EDUs still go directly', async () => {
    const storage = createMemoryStorage();
    const { transport, sent } = recordingTransport(() => ({ status: 200, body: {} }));
    const published: unknown[] = [];
    const events = new EventTarget();
    const queue: OutboxQueueState[] = [];
    events.addEventListener('outbox:queue', (e) => queue.push((e as CustomEvent<OutboxQueueState>).detail));
    const outbox = sender(storage, transport, manualClock(), { gossip: true, published, events });
    await outbox.start();
    await enqueue(storage, 'x', [pdu(1), edu(1), pdu(2)]);
    await settle();
    expect(published).toHaveLength(2);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.request.body).toMatchObject({ pdus: [], edus: [{ edu_type: 'm.typing' }] });
    expect(await storage.read((txn) => txn.outbound.destinations())).toEqual([]);
    expect(queue.some((q) => q.destination === 'x' && q.inFlight)).toBe(true);
    expect(queue.at(-1)).toMatchObject({ destination: 'x', queued: 0, inFlight: false });
    outbox.stop();
  });
});

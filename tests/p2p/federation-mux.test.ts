// The multiplexed federation protocol (/hometab/federation/2): first over in-memory libp2p stream pairs
// (@libp2p/utils), where a test can play a hostile peer byte by byte, then between Node transports over real
// libp2p WebSockets on 127.0.0.1: pipelined requests on one stream, answers out of order, per-request timeouts,
// the reopened stream after a reset, and the fallback to version 1 for a peer that does not speak version 2.
import type { Stream } from '@libp2p/interface';
import { streamPair } from '@libp2p/utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P2PError } from '../../src/p2p/errors.js';
import { createMuxClient, FEDERATION_PROTOCOL_V2, serveMuxStream, type MuxServeDeps } from '../../src/p2p/federation-mux.js';
import { FEDERATION_PROTOCOL, resolveProtocolOptions, type FederationProtocolOptions } from '../../src/p2p/federation-protocol.js';
import { encodeFrame, FrameDecoder } from '../../src/p2p/framing.js';
import { peerIdOfServerName } from '../../src/p2p/identity.js';
import { createNodeTransport, type Libp2pFederationTransport } from '../../src/p2p/node-node.js';
import { createPeerRateLimiter } from '../../src/p2p/rate-limit.js';
import type { FederationHandler } from '../../src/p2p/transport.js';
import { randomSeed, sleep, waitFor } from './helpers.js';

const echo: FederationHandler = async (origin, request) => ({ status: 200, body: { origin, path: request.path, body: request.body ?? null } });
const text = new TextEncoder();

interface Served {
  client: Stream;
  server: Stream;
  warnings: string[];
  /** Resolves when the server stops serving the stream. */
  done: Promise<void>;
}

/** A served version 2 stream over an in-memory pair; `client` is the raw dialling end. */
async function served(handler: FederationHandler = echo, protocol: FederationProtocolOptions = {}): Promise<Served> {
  const [client, server] = await streamPair({ protocol: FEDERATION_PROTOCOL_V2 });
  const warnings: string[] = [];
  const deps: MuxServeDeps = {
    options: resolveProtocolOptions(protocol),
    limiter: createPeerRateLimiter(protocol.rateLimit ?? { ratePerSecond: 10_000, burst: 10_000, maxConcurrent: 1_000 }),
    handler: () => handler,
    log: { warn: (message) => warnings.push(message) },
  };
  const done = serveMuxStream(server, 'peer.example', deps);
  return { client, server, warnings, done };
}

/** Every frame the raw end receives until it ends, parsed. */
async function framesOf(stream: Stream): Promise<unknown[]> {
  const decoder = new FrameDecoder(8 << 20);
  const out: unknown[] = [];
  try {
    for await (const chunk of stream) for (const f of decoder.push(chunk instanceof Uint8Array ? chunk : chunk.subarray())) out.push(JSON.parse(new TextDecoder().decode(f)));
  } catch {
    // a reset ends the listing
  }
  return out;
}

const frame = (value: unknown): Uint8Array => encodeFrame(text.encode(JSON.stringify(value)));

describe('federation protocol version 2 over in-memory streams', () => {
  it('pipelines many concurrent requests on one stream, each answered once under its own id', async () => {
    // Later requests finish first: the answers come back out of order and still reach their callers.
    const handler: FederationHandler = async (origin, request) => {
      const n = Number(request.path.split('/').pop());
      await sleep((200 - n) % 17);
      return echo(origin, request);
    };
    const { client, warnings } = await served(handler);
    const mux = createMuxClient(client, resolveProtocolOptions(), { warn: (m) => warnings.push(m) });
    const order: number[] = [];
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, n) =>
        mux.request({ method: 'PUT', path: `/send/${n}`, body: { n } }).then((response) => {
          order.push(n);
          return response;
        }),
      ),
    );
    answers.forEach((response, n) => expect(response).toEqual({ status: 200, body: { origin: 'peer.example', path: `/send/${n}`, body: { n } } }));
    expect(order).not.toEqual([...order].sort((x, y) => x - y));
    expect(mux.inFlight).toBe(0);
    expect(mux.closed).toBe(false);
    expect(warnings).toEqual([]);
  });

  it('times out one request without disturbing the others, and drops its late answer quietly', async () => {
    const handler: FederationHandler = async (origin, request) => {
      if (request.path === '/slow') await sleep(300);
      return echo(origin, request);
    };
    const { client, warnings } = await served(handler);
    const mux = createMuxClient(client, resolveProtocolOptions(), { warn: (m) => warnings.push(m) });
    const slow = mux.request({ method: 'GET', path: '/slow' }, { timeoutMs: 50 }).catch((e: unknown) => e);
    const aborted = new AbortController();
    const cancelled = mux.request({ method: 'GET', path: '/slow' }, { signal: aborted.signal }).catch((e: unknown) => e);
    aborted.abort();
    expect((await mux.request({ method: 'GET', path: '/fast' })).status).toBe(200);
    expect(await slow).toMatchObject({ code: 'TIMEOUT' });
    expect(await cancelled).toMatchObject({ code: 'ABORTED' });
    await sleep(400); // both late answers arrive and are dropped
    expect((await mux.request({ method: 'GET', path: '/after' })).status).toBe(200);
    expect(mux.closed).toBe(false);
    expect(warnings).toEqual([]);
  });

  it('refuses an oversize request locally, before it is sent', async () => {
    const { client } = await served();
    const mux = createMuxClient(client, resolveProtocolOptions({ maxRequestBytes: 1_000 }), { warn() {} });
    await expect(mux.request({ method: 'PUT', path: '/big', body: 'x'.repeat(2_000) })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect((await mux.request({ method: 'GET', path: '/small' })).status).toBe(200);
  });

  it('resets the stream of a peer that sends garbage, and logs why', async () => {
    const cases: Array<[string, Uint8Array]> = [
      ['not JSON', encodeFrame(text.encode('{"id":1,"method":'))],
      ['not UTF-8', encodeFrame(new Uint8Array([0xc3, 0x28]))],
      ['no id', frame({ method: 'GET', path: '/x' })],
      ['a negative id', frame({ id: -1, method: 'GET', path: '/x' })],
      ['a fractional id', frame({ id: 1.5, method: 'GET', path: '/x' })],
      ['a bad method', frame({ id: 1, method: 'DELETE', path: '/x' })],
      ['an array', frame([1, 2, 3])],
      ['deep JSON', encodeFrame(text.encode(`{"id":1,"method":"GET","path":"/x","body":${'['.repeat(5_000)}${']'.repeat(5_000)}}`))],
      ['an over-long length prefix', new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])],
    ];
    for (const [what, bytes] of cases) {
      const { client, warnings, done } = await served();
      client.send(bytes);
      const frames = await framesOf(client);
      await done;
      expect(frames, what).toEqual([]);
      expect(warnings, what).toHaveLength(1);
      expect(warnings[0], what).toMatch(/peer\.example: .*stream reset/);
    }
  });

  it('resets the stream on a frame announced over the limit, before its body arrives', async () => {
    const { client, warnings, done } = await served(echo, { maxRequestBytes: 1_024 });
    // The prefix alone announces 1 MiB; no body follows.
    client.send(encodeFrame(new Uint8Array(1 << 20)).subarray(0, 3));
    await framesOf(client);
    await done;
    expect(warnings[0]).toMatch(/exceeds 1024.*stream reset/);
  });

  it('resets the stream when a request id is reused while the first is in flight', async () => {
    const handler: FederationHandler = async (origin, request) => {
      await sleep(100);
      return echo(origin, request);
    };
    const { client, warnings, done } = await served(handler);
    client.send(frame({ id: 7, method: 'GET', path: '/a' }));
    client.send(frame({ id: 7, method: 'GET', path: '/b' }));
    await framesOf(client);
    await done;
    expect(warnings[0]).toMatch(/request id 7 is already in flight/);
  });

  it('serves requests that trickle in byte by byte, and keeps __proto__ as data', async () => {
    const { client, warnings } = await served();
    const bytes = frame({ id: 3, method: 'PUT', path: '/p', body: JSON.parse('{"__proto__":{"polluted":true}}') });
    for (const byte of bytes) client.send(new Uint8Array([byte]));
    const decoder = new FrameDecoder(1 << 20);
    let answer: unknown;
    for await (const chunk of client) {
      const [first] = decoder.push(chunk instanceof Uint8Array ? chunk : chunk.subarray());
      if (first) {
        answer = JSON.parse(new TextDecoder().decode(first));
        break;
      }
    }
    expect(answer).toMatchObject({ id: 3, status: 200, body: { path: '/p' } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(warnings).toEqual([]);
  });

  it('cuts off a peer that starts a frame and stalls, but not one that is merely idle between frames', async () => {
    const { client, warnings, done } = await served(echo, { inboundReadTimeoutMs: 200 });
    const mux = createMuxClient(client, resolveProtocolOptions(), { warn() {} });
    expect((await mux.request({ method: 'GET', path: '/1' })).status).toBe(200);
    await sleep(400); // idle: fine
    expect((await mux.request({ method: 'GET', path: '/2' })).status).toBe(200);
    client.send(frame({ id: 99, method: 'GET', path: '/stall' }).subarray(0, 5));
    await done;
    expect(warnings[0]).toMatch(/did not arrive whole within 200 ms/);
    await expect(mux.request({ method: 'GET', path: '/3' })).rejects.toBeInstanceOf(P2PError);
    expect(mux.closed).toBe(true);
  });

  it('answers 429 in-protocol past the per-peer rate and in-flight caps, keeping the stream', async () => {
    const handler: FederationHandler = async (origin, request) => {
      await sleep(100);
      return echo(origin, request);
    };
    const { client, warnings } = await served(handler, { rateLimit: { ratePerSecond: 1, burst: 100, maxConcurrent: 3 } });
    const mux = createMuxClient(client, resolveProtocolOptions(), { warn() {} });
    const statuses = await Promise.all(Array.from({ length: 8 }, (_, n) => mux.request({ method: 'GET', path: `/${n}` }).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
    expect((await mux.request({ method: 'GET', path: '/later' })).status).toBe(200);
    expect(warnings).toEqual([]);
  });

  it('replaces an answer over the size limit by a 500 under the same id', async () => {
    const { client } = await served(async () => ({ status: 200, body: 'y'.repeat(5_000) }), { maxResponseBytes: 1_000 });
    const mux = createMuxClient(client, resolveProtocolOptions({ maxResponseBytes: 1_000 }), { warn() {} });
    expect(await mux.request({ method: 'GET', path: '/huge' })).toMatchObject({ status: 500, body: { errcode: 'M_TOO_LARGE' } });
  });

  describe('the dialling side against a hostile server', () => {
    async function hostileServer(reply: (request: { id: number }) => Uint8Array) {
      const [client, server] = await streamPair({ protocol: FEDERATION_PROTOCOL_V2 });
      void (async () => {
        const decoder = new FrameDecoder(1 << 20);
        try {
          for await (const chunk of server) {
            for (const f of decoder.push(chunk instanceof Uint8Array ? chunk : chunk.subarray())) server.send(reply(JSON.parse(new TextDecoder().decode(f))));
          }
        } catch {
          // reset by the client
        }
      })();
      const warnings: string[] = [];
      const mux = createMuxClient(client, resolveProtocolOptions({ maxResponseBytes: 4_096 }), { warn: (m) => warnings.push(m) });
      return { mux, warnings };
    }

    it('resets on an answer to a request never made, failing what was in flight as retryable', async () => {
      const { mux, warnings } = await hostileServer((request) => frame({ id: request.id + 1_000, status: 200, body: {} }));
      await expect(mux.request({ method: 'GET', path: '/x' })).rejects.toMatchObject({ code: 'UNREACHABLE' });
      expect(mux.closed).toBe(true);
      expect(warnings[0]).toMatch(/never made.*stream reset/);
    });

    it('resets on a malformed answer and on one over the size limit', async () => {
      for (const reply of [
        (request: { id: number }) => frame({ id: request.id, status: 'ok', body: {} }),
        (request: { id: number }) => frame({ id: request.id, status: 200, body: 'z'.repeat(10_000) }),
        () => encodeFrame(text.encode('nonsense')),
      ]) {
        const { mux, warnings } = await hostileServer(reply);
        await expect(mux.request({ method: 'GET', path: '/x' })).rejects.toMatchObject({ code: 'UNREACHABLE' });
        expect(warnings).toHaveLength(1);
      }
    });
  });
});

describe('federation protocol version 2 between Node transports over libp2p WebSockets', () => {
  let a: Libp2pFederationTransport;
  let b: Libp2pFederationTransport;
  /** Speaks only version 1 outbound. */
  let old: Libp2pFederationTransport;
  const warnings: string[] = [];
  const all: Libp2pFederationTransport[] = [];

  beforeAll(async () => {
    a = await createNodeTransport({ seed: randomSeed(), log: { warn: (m: string) => warnings.push(m) } });
    b = await createNodeTransport({ seed: randomSeed(), protocol: { rateLimit: { ratePerSecond: 10_000, burst: 10_000, maxConcurrent: 1_000 } }, log: { warn: (m: string) => warnings.push(m) } });
    old = await createNodeTransport({ seed: randomSeed(), protocol: { multiplexed: false } });
    all.push(a, b, old);
    for (const t of all) t.handle(echo);
    for (const t of [a, old]) await t.peerBook.learn(b.localServer, b.node.getMultiaddrs().map(String));
  });

  afterAll(async () => {
    await Promise.all(all.map((t) => t.close()));
  });

  /** Federation streams of `from`'s connections to `to`, by protocol. */
  function streams(from: Libp2pFederationTransport, to: Libp2pFederationTransport, protocol: string): number {
    return from.node
      .getConnections(peerIdOfServerName(to.localServer))
      .flatMap((c) => c.streams)
      .filter((s) => s.protocol === protocol).length;
  }

  it('carries 300 concurrent requests on one stream, with the authenticated origin', async () => {
    const answers = await Promise.all(Array.from({ length: 300 }, (_, n) => a.request(b.localServer, { method: 'PUT', path: `/_matrix/federation/v1/send/${n}`, body: { origin: 'forged.example', n } })));
    answers.forEach((response, n) => expect(response).toEqual({ status: 200, body: { origin: a.localServer, path: `/_matrix/federation/v1/send/${n}`, body: { origin: 'forged.example', n } } }));
    expect(streams(a, b, FEDERATION_PROTOCOL_V2)).toBe(1);
    expect(streams(a, b, FEDERATION_PROTOCOL)).toBe(0);
  });

  it('opens a new stream after the old one was reset', async () => {
    const [stream] = a.node.getConnections(peerIdOfServerName(b.localServer)).flatMap((c) => c.streams).filter((s) => s.protocol === FEDERATION_PROTOCOL_V2);
    stream!.abort(new Error('test reset'));
    await waitFor(() => streams(a, b, FEDERATION_PROTOCOL_V2) === 0, 5_000, 'the reset stream to go');
    expect((await a.request(b.localServer, { method: 'GET', path: '/again' })).status).toBe(200);
    expect(streams(a, b, FEDERATION_PROTOCOL_V2)).toBe(1);
  });

  it('resets a raw stream that sends garbage and logs it; honest requests keep flowing', async () => {
    const raw = await a.node.dialProtocol(peerIdOfServerName(b.localServer), FEDERATION_PROTOCOL_V2);
    raw.send(frame({ id: 'one', method: 'GET', path: '/x' }));
    await waitFor(() => raw.status !== 'open', 5_000, 'the garbage stream to be reset');
    await waitFor(() => warnings.some((w) => w.includes(a.localServer) && w.includes('request id')), 5_000, 'the warning');
    expect((await a.request(b.localServer, { method: 'GET', path: '/honest' })).status).toBe(200);
  });

  it('falls back to version 1 for a peer that does not serve version 2', async () => {
    // Last but one: b stops serving version 2 for good.
    await b.node.unhandle(FEDERATION_PROTOCOL_V2);
    const fresh = await createNodeTransport({ seed: randomSeed() });
    all.push(fresh);
    fresh.handle(echo);
    await fresh.peerBook.learn(b.localServer, b.node.getMultiaddrs().map(String));
    const answers = await Promise.all([0, 1, 2].map((n) => fresh.request(b.localServer, { method: 'GET', path: `/v1/${n}` })));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(streams(fresh, b, FEDERATION_PROTOCOL_V2)).toBe(0);
  });

  it('a dialler with multiplexing off speaks version 1 only, and is served', async () => {
    expect((await old.request(b.localServer, { method: 'GET', path: '/old' })).body).toMatchObject({ origin: old.localServer });
    expect(streams(old, b, FEDERATION_PROTOCOL_V2)).toBe(0);
  });
});

// The federation protocol between Node transports over real libp2p WebSockets on 127.0.0.1:
// direct and relayed (/p2p-circuit) links, authenticated origin, limits, timeouts, rate limit,
// malformed input, and gossipsub two hops away.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRelay, type Relay } from '../../src/p2p/relay.js';
import { createNodeTransport, type Libp2pFederationTransport } from '../../src/p2p/node-node.js';
import { FEDERATION_PROTOCOL } from '../../src/p2p/federation-protocol.js';
import { peerIdOfServerName } from '../../src/p2p/identity.js';
import { encodeFrame, readFrame } from '../../src/p2p/framing.js';
import { P2PError } from '../../src/p2p/errors.js';
import type { FederationHandler } from '../../src/p2p/transport.js';
import { randomSeed, sleep, waitFor } from './helpers.js';

const echo: FederationHandler = async (origin, request) => ({ status: 200, body: { origin, method: request.method, path: request.path, body: request.body ?? null } });

describe('federation protocol over libp2p WebSockets', () => {
  let relay: Relay;
  let relayAddr: string;
  /** WebSockets listener, also reserved on the relay. */
  let a: Libp2pFederationTransport;
  /** No listener at all: reachable only through the relay. */
  let b: Libp2pFederationTransport;
  /** WebSockets listener with short inbound deadlines. */
  let c: Libp2pFederationTransport;
  const all: Libp2pFederationTransport[] = [];

  beforeAll(async () => {
    relay = await createRelay();
    relayAddr = relay.addresses()[0]!;
    a = await createNodeTransport({ seed: randomSeed(), relays: [relayAddr], protocol: { maxRequestBytes: 8 << 20 } });
    b = await createNodeTransport({ seed: randomSeed(), relays: [relayAddr], listen: [] });
    c = await createNodeTransport({ seed: randomSeed(), protocol: { inboundReadTimeoutMs: 400, handlerTimeoutMs: 5_000 } });
    all.push(a, b, c);
    for (const t of all) t.handle(echo);
    // b is reachable once its relay reservation shows up among its addresses.
    await waitFor(() => b.node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')), 15_000, 'relay reservation');
  });

  afterAll(async () => {
    await Promise.all(all.map((t) => t.close()));
    await relay?.stop();
  });

  it('reaches a server known only by name through the relay, and the answer names the authenticated origin', async () => {
    const response = await a.request(b.localServer, { method: 'PUT', path: '/_matrix/federation/v1/send/1', body: { pdus: [], origin: 'forged.example' } });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ origin: a.localServer, method: 'PUT', path: '/_matrix/federation/v1/send/1' });
    const link = a.peers().find((p) => p.server === b.localServer);
    expect(link).toEqual({ server: b.localServer, direct: false, via: 'relay' });
  });

  it('answers the other way over the same relayed link', async () => {
    const response = await b.request(a.localServer, { method: 'GET', path: '/_matrix/federation/v1/version' });
    expect(response).toEqual({ status: 200, body: { origin: b.localServer, method: 'GET', path: '/_matrix/federation/v1/version', body: null } });
  });

  it('dials a known address directly, both ways, and reports the link as a direct WebSocket', async () => {
    await a.peerBook.learn(c.localServer, c.node.getMultiaddrs().map(String));
    const online = new Promise<void>((resolve) => c.events.addEventListener('peer:online', () => resolve(), { once: true }));
    const response = await a.request(c.localServer, { method: 'POST', path: '/_matrix/federation/v1/user/keys/query', body: { device_keys: {} } });
    expect(response.body).toMatchObject({ origin: a.localServer, body: { device_keys: {} } });
    await online;
    expect(a.peers().find((p) => p.server === c.localServer)).toEqual({ server: c.localServer, direct: true, via: 'websocket' });
    const back = await c.request(a.localServer, { method: 'GET', path: '/x' });
    expect(back.body).toMatchObject({ origin: c.localServer });
  });

  it('refuses an oversize request: locally before sending, and remotely by its length prefix', async () => {
    const big = 'x'.repeat(2 << 20);
    await expect(b.request(a.localServer, { method: 'PUT', path: '/big', body: big })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    // a allows itself 8 MiB, c accepts 1 MiB: on version 2, c resets the stream by the prefix alone
    // (the request fails), and a's next request opens a new stream.
    await expect(a.request(c.localServer, { method: 'PUT', path: '/big', body: big })).rejects.toMatchObject({ code: 'UNREACHABLE' });
    expect((await a.request(c.localServer, { method: 'GET', path: '/after-big' })).status).toBe(200);
    // On version 1 the stream carries one exchange, so c answers 413 without buffering the body.
    const stream = await a.node.dialProtocol(peerIdOfServerName(c.localServer), FEDERATION_PROTOCOL);
    stream.send(encodeFrame(new TextEncoder().encode(JSON.stringify({ method: 'PUT', path: '/big', body: big }))));
    const answer = JSON.parse(new TextDecoder().decode(await readFrame(stream, 1 << 20))) as { status: number; body: unknown };
    expect(answer).toMatchObject({ status: 413, body: { errcode: 'M_TOO_LARGE' } });
  });

  it('carries a large response whole, and replaces one over the limit by a 500', async () => {
    c.handle(async (origin, request) => ({ status: 200, body: { blob: 'y'.repeat(request.path === '/huge' ? 5 << 20 : 3 << 20) } }));
    const large = await a.request(c.localServer, { method: 'GET', path: '/large' });
    expect((large.body as { blob: string }).blob).toHaveLength(3 << 20);
    const huge = await a.request(c.localServer, { method: 'GET', path: '/huge' });
    expect(huge).toMatchObject({ status: 500, body: { errcode: 'M_TOO_LARGE' } });
    c.handle(echo);
  });

  it('times out a request whose handler is too slow, and the server keeps serving', async () => {
    c.handle(async (origin, request) => {
      if (request.path === '/slow') await sleep(2_000);
      return echo(origin, request);
    });
    const started = Date.now();
    const error = await a.request(c.localServer, { method: 'GET', path: '/slow' }, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(P2PError);
    expect((error as P2PError).code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeLessThan(1_500);
    const aborted = new AbortController();
    const pending = a.request(c.localServer, { method: 'GET', path: '/slow' }, { signal: aborted.signal });
    aborted.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
    expect((await a.request(c.localServer, { method: 'GET', path: '/fast' })).status).toBe(200);
    c.handle(echo);
  });

  it('cuts off a peer that sends half a request and then stalls', async () => {
    const stream = await a.node.dialProtocol(peerIdOfServerName(c.localServer), FEDERATION_PROTOCOL);
    const frame = encodeFrame(new TextEncoder().encode(JSON.stringify({ method: 'GET', path: '/stall' })));
    stream.send(frame.subarray(0, 5));
    const started = Date.now();
    await expect(readFrame(stream, 1 << 20)).rejects.toBeDefined();
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await a.request(c.localServer, { method: 'GET', path: '/after-stall' })).status).toBe(200);
  });

  it('answers malformed frames, bad JSON and deep JSON with 400 and keeps serving', async () => {
    const raw = async (bytes: Uint8Array): Promise<unknown> => {
      const stream = await a.node.dialProtocol(peerIdOfServerName(c.localServer), FEDERATION_PROTOCOL);
      stream.send(bytes);
      try {
        return JSON.parse(new TextDecoder().decode(await readFrame(stream, 1 << 20)));
      } catch (error) {
        return error;
      }
    };
    const enc = (text: string): Uint8Array => encodeFrame(new TextEncoder().encode(text));
    expect(await raw(enc('{"method":'))).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await raw(enc('[1,2,3]'))).toMatchObject({ status: 400 });
    expect(await raw(enc('{"method":"DELETE","path":"/x"}'))).toMatchObject({ status: 400 });
    expect(await raw(enc('{"method":"GET","path":"/x","body":' + '['.repeat(10_000) + ']'.repeat(10_000) + '}'))).toMatchObject({ status: 400, body: { errcode: 'M_BAD_JSON' } });
    expect(await raw(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toMatchObject({ status: 400 });
    expect(await raw(encodeFrame(new Uint8Array([0xc3, 0x28])))).toMatchObject({ status: 400 });
    // __proto__ stays data: it does not reach the handler as a prototype.
    const proto = await raw(enc('{"method":"PUT","path":"/p","body":{"__proto__":{"polluted":true}}}'));
    expect(proto).toMatchObject({ status: 200 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await a.request(c.localServer, { method: 'GET', path: '/still-fine' })).status).toBe(200);
  });

  it('rate-limits a flooding peer with 429 M_LIMIT_EXCEEDED, then lets it back in', async () => {
    const limited = await createNodeTransport({ seed: randomSeed(), protocol: { rateLimit: { ratePerSecond: 5, burst: 5 } } });
    all.push(limited);
    limited.handle(echo);
    await a.peerBook.learn(limited.localServer, limited.node.getMultiaddrs().map(String));
    const statuses: number[] = [];
    let limitedBody: unknown;
    for (let i = 0; i < 10; i++) {
      const response = await a.request(limited.localServer, { method: 'GET', path: `/n/${i}` });
      statuses.push(response.status);
      if (response.status === 429) limitedBody = response.body;
    }
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses).toContain(429);
    expect(limitedBody).toMatchObject({ errcode: 'M_LIMIT_EXCEEDED' });
    expect((limitedBody as { retry_after_ms: number }).retry_after_ms).toBeGreaterThan(0);
    // Another peer is not affected by a's bucket.
    await c.peerBook.learn(limited.localServer, limited.node.getMultiaddrs().map(String));
    expect((await c.request(limited.localServer, { method: 'GET', path: '/other' })).status).toBe(200);
    await sleep(1_100);
    expect((await a.request(limited.localServer, { method: 'GET', path: '/again' })).status).toBe(200);
  });

  it('caps requests in flight per peer', async () => {
    const capped = await createNodeTransport({ seed: randomSeed(), protocol: { rateLimit: { maxConcurrent: 2 } } });
    all.push(capped);
    capped.handle(async (origin, request) => {
      await sleep(300);
      return echo(origin, request);
    });
    await a.peerBook.learn(capped.localServer, capped.node.getMultiaddrs().map(String));
    const statuses = await Promise.all([0, 1, 2, 3].map((i) => a.request(capped.localServer, { method: 'GET', path: `/c/${i}` }).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(2);
    expect(statuses.filter((s) => s === 429)).toHaveLength(2);
  });

  it('caps open streams per peer, answering the extra stream at once without reading it', async () => {
    const capped = await createNodeTransport({ seed: randomSeed(), protocol: { maxStreamsPerPeer: 3 } });
    all.push(capped);
    capped.handle(echo);
    await a.peerBook.learn(capped.localServer, capped.node.getMultiaddrs().map(String));
    const connection = await a.peerBook.dial(capped.localServer);
    // Three idle streams (opened, no request yet) use up a's allowance...
    const idle = await Promise.all([0, 1, 2].map(() => connection.newStream(FEDERATION_PROTOCOL)));
    await sleep(100);
    const extra = await connection.newStream(FEDERATION_PROTOCOL);
    const answer = JSON.parse(new TextDecoder().decode(await readFrame(extra, 1 << 20))) as { status: number; body: { errcode: string } };
    expect(answer).toMatchObject({ status: 429, body: { errcode: 'M_LIMIT_EXCEEDED' } });
    // ...and an idle stream still serves its request when it finally sends one.
    idle[0]!.send(encodeFrame(new TextEncoder().encode(JSON.stringify({ method: 'GET', path: '/late' }))));
    expect(JSON.parse(new TextDecoder().decode(await readFrame(idle[0]!, 1 << 20)))).toMatchObject({ status: 200, body: { path: '/late' } });
    for (const s of idle) s.abort(new Error('done'));
  });

  it('delivers a gossipsub message to a subscriber two hops away, naming the peer that propagated it', async () => {
    const [x, y, z] = await Promise.all([0, 1, 2].map(() => createNodeTransport({ seed: randomSeed() })));
    all.push(x!, y!, z!);
    await x!.peerBook.learn(y!.localServer, y!.node.getMultiaddrs().map(String));
    await z!.peerBook.learn(y!.localServer, y!.node.getMultiaddrs().map(String));
    await x!.peerBook.dial(y!.localServer);
    await z!.peerBook.dial(y!.localServer);
    const topic = 'hometab/room/!abc';
    const received: { text: string; from: string }[] = [];
    y!.subscribe(topic, () => {});
    z!.subscribe(topic, (data, from) => received.push({ text: new TextDecoder().decode(data), from }));
    x!.subscribe(topic, () => {});
    // The mesh forms within a heartbeat or two; publish until the far end has heard.
    await waitFor(async () => {
      await x!.publish(topic, new TextEncoder().encode('hello'));
      await sleep(100);
      return received.length > 0;
    }, 10_000, 'two-hop delivery');
    expect(received[0]).toEqual({ text: 'hello', from: y!.localServer });
    expect(z!.node.getConnections(peerIdOfServerName(x!.localServer))).toHaveLength(0);
  });
});

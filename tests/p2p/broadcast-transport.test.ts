// The BroadcastChannel transport in Node (Node has BroadcastChannel): discovery, request/response
// with a signature-authenticated origin, forged / replayed / redirected frames ignored, topics,
// and the combinator that prefers one transport and falls back to another.
import { afterEach, describe, expect, it } from 'vitest';
import { createBroadcastTransport, type BroadcastChannelLike } from '../../src/p2p/broadcast-transport.js';
import { combineTransports } from '../../src/p2p/combine.js';
import { MemoryNetwork } from '../../src/p2p/memory-transport.js';
import type { FederationTransport, PeerInfo } from '../../src/p2p/transport.js';
import { randomSeed, sleep, waitFor } from './helpers.js';

const opened: FederationTransport[] = [];
const channels: BroadcastChannel[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((t) => t.close()));
  channels.splice(0).forEach((c) => c.close());
});

let channelCounter = 0;
async function pair(channelName = `test-${process.pid}-${channelCounter++}`) {
  const a = await createBroadcastTransport({ seed: randomSeed(), channelName, heartbeatMs: 200 });
  const b = await createBroadcastTransport({ seed: randomSeed(), channelName, heartbeatMs: 200 });
  opened.push(a, b);
  a.handle(async (origin, request) => ({ status: 200, body: { origin, path: request.path, body: request.body ?? null } }));
  b.handle(async (origin, request) => ({ status: 200, body: { origin, path: request.path, body: request.body ?? null } }));
  await waitFor(() => a.peers().length === 1 && b.peers().length === 1, 5_000, 'discovery');
  return { a, b, channelName };
}

function spy(name: string): { channel: BroadcastChannel; frames: Record<string, unknown>[] } {
  const channel = new BroadcastChannel(name);
  channels.push(channel);
  const frames: Record<string, unknown>[] = [];
  channel.addEventListener('message', (e) => frames.push((e as MessageEvent).data));
  return { channel, frames };
}

describe('BroadcastChannel transport', () => {
  it('finds the other tab and answers requests with the signed origin', async () => {
    const { a, b } = await pair();
    expect(a.peers()).toEqual([{ server: b.localServer, direct: true, via: 'broadcast-channel' }]);
    const response = await a.request(b.localServer, { method: 'PUT', path: '/_matrix/federation/v1/send/1', body: { pdus: [] } });
    expect(response).toEqual({ status: 200, body: { origin: a.localServer, path: '/_matrix/federation/v1/send/1', body: { pdus: [] } } });
    expect((await b.request(a.localServer, { method: 'GET', path: '/back' })).body).toMatchObject({ origin: b.localServer });
  });

  it('ignores forged, replayed and redirected frames', async () => {
    const { a, b, channelName } = await pair();
    const { channel, frames } = spy(channelName);
    const seen: string[] = [];
    b.handle(async (origin, request) => {
      seen.push(`${origin.slice(0, 4)} ${request.path}`);
      return { status: 200, body: {} };
    });
    await a.request(b.localServer, { method: 'GET', path: '/real' });
    const request = frames.find((f) => f.kind === 'req')!;
    expect(request).toBeDefined();
    // Replay of the very same frame: its nonce was used.
    channel.postMessage(request);
    // A forged frame claiming to be from a: signature does not cover the new path.
    channel.postMessage({ ...request, nonce: 'bmV3', payload: JSON.stringify({ method: 'GET', path: '/forged' }) });
    // The same request redirected to another server name: `to` is signed.
    channel.postMessage({ ...request, to: 'f'.repeat(64) });
    // Garbage of every shape.
    for (const junk of [null, 1, 'x', [], { v: 1 }, { ...request, v: 2 }, { ...request, ts: 'now' }]) channel.postMessage(junk);
    await sleep(300);
    expect(seen).toEqual([`${a.localServer.slice(0, 4)} /real`]);
  });

  it('refuses frames outside the replay window', async () => {
    const channelName = `skew-${process.pid}`;
    let skew = 0;
    const a = await createBroadcastTransport({ seed: randomSeed(), channelName, now: () => Date.now() + skew, replayWindowMs: 1_000 });
    const b = await createBroadcastTransport({ seed: randomSeed(), channelName, replayWindowMs: 1_000 });
    opened.push(a, b);
    await waitFor(() => a.peers().length === 1, 5_000, 'discovery');
    skew = 5_000; // a's clock is now far ahead: b drops its frames
    await expect(a.request(b.localServer, { method: 'GET', path: '/late' }, { timeoutMs: 300 })).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('publishes to subscribers of a topic with the publisher as sender, and says bye on close', async () => {
    const { a, b } = await pair();
    const got: string[] = [];
    b.subscribe('room', (data, from) => got.push(`${new TextDecoder().decode(data)} from ${from === a.localServer ? 'a' : from}`));
    await a.publish('room', new TextEncoder().encode('hi'));
    await a.publish('other', new TextEncoder().encode('no'));
    await waitFor(() => got.length === 1, 2_000, 'pubsub');
    expect(got).toEqual(['hi from a']);
    const offline = new Promise<PeerInfo>((resolve) => b.events.addEventListener('peer:offline', (e) => resolve((e as CustomEvent<PeerInfo>).detail), { once: true }));
    await a.close();
    expect((await offline).server).toBe(a.localServer);
    await expect(b.request(a.localServer, { method: 'GET', path: '/' })).rejects.toMatchObject({ code: 'UNREACHABLE' });
  });

  it('works with an injected channel factory', async () => {
    const created: string[] = [];
    const factory = (name: string): BroadcastChannelLike => {
      created.push(name);
      return new BroadcastChannel(name) as unknown as BroadcastChannelLike;
    };
    const t = await createBroadcastTransport({ seed: randomSeed(), channelName: 'injected', createChannel: factory });
    opened.push(t);
    expect(created).toEqual(['injected']);
  });
});

describe('combineTransports', () => {
  it('prefers the better link, falls back when it goes away, merges peer events and de-duplicates topics', async () => {
    const channelName = `combine-${process.pid}`;
    const seedA = randomSeed();
    const seedB = randomSeed();
    const ba = await createBroadcastTransport({ seed: seedA, channelName, heartbeatMs: 200 });
    const bb = await createBroadcastTransport({ seed: seedB, channelName, heartbeatMs: 200 });
    const network = new MemoryNetwork({ requestTimeoutMs: 200 });
    const a = combineTransports([network.transport(ba.localServer), ba]);
    const b = combineTransports([network.transport(bb.localServer), bb]);
    opened.push(a, b);
    const vias: string[] = [];
    b.handle(async (_origin, request) => {
      vias.push(request.path);
      return { status: 200, body: {} };
    });
    await waitFor(() => ba.peers().length === 1, 5_000, 'broadcast discovery');
    const links: string[] = [];
    a.events.addEventListener('peer:link', (e) => links.push((e as CustomEvent<PeerInfo>).detail.via));
    expect(a.peers()).toEqual([{ server: b.localServer, direct: true, via: 'memory' }]);
    await a.request(b.localServer, { method: 'GET', path: '/one' });
    network.partition([a.localServer], [b.localServer]);
    expect(a.peers()).toEqual([{ server: b.localServer, direct: true, via: 'broadcast-channel' }]);
    expect(links).toEqual(['broadcast-channel']);
    expect((await a.request(b.localServer, { method: 'GET', path: '/two' })).status).toBe(200);
    network.heal();
    const got: string[] = [];
    b.subscribe('room', (data) => got.push(new TextDecoder().decode(data)));
    await a.publish('room', new TextEncoder().encode('once'));
    await network.settle();
    await sleep(200);
    expect(got).toEqual(['once']);
    expect(vias).toEqual(['/one', '/two']);
  });
});

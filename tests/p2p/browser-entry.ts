/**
 * Browser side of the p2p Chromium tests and benchmark: bundled with esbuild
 * and loaded in a page, it exposes `hometabP2p` for the test to drive through
 * page.evaluate. It imports nothing from Node.
 */
import { createBrowserTransport } from '../../src/p2p/node-browser.js';
import { createBroadcastTransport } from '../../src/p2p/broadcast-transport.js';
import type { FederationResponse, FederationTransport, PeerInfo } from '../../src/p2p/transport.js';
import type { Libp2pFederationTransport } from '../../src/p2p/node-node.js';
import type { FederationProtocolOptions } from '../../src/p2p/federation-protocol.js';

let transport: FederationTransport | undefined;
let libp2p: Libp2pFederationTransport | undefined;
const peerEvents: string[] = [];

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
}

function install(t: FederationTransport): string {
  transport = t;
  t.handle(async (origin, request) => ({ status: 200, body: { origin, path: request.path, body: request.body ?? null } }));
  for (const name of ['peer:online', 'peer:link', 'peer:offline']) {
    t.events.addEventListener(name, (e) => {
      const info = (e as CustomEvent<PeerInfo>).detail;
      peerEvents.push(`${name} ${info.via} ${info.direct ? 'direct' : 'limited'}`);
    });
  }
  return t.localServer;
}

export async function startLibp2p(seedHex: string, relays: string[], protocol?: FederationProtocolOptions): Promise<string> {
  libp2p = await createBrowserTransport({ seed: fromHex(seedHex), relays, iceServers: [], allowLocalAddresses: true, protocol });
  return install(libp2p);
}

export async function startBroadcast(seedHex: string, channelName: string): Promise<string> {
  return install(await createBroadcastTransport({ seed: fromHex(seedHex), channelName, heartbeatMs: 250 }));
}

/** True once the tab holds a relay reservation (it is reachable by name). */
export function reachable(): boolean {
  return libp2p!.node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit'));
}

export function peers(): PeerInfo[] {
  return transport!.peers();
}

/** The peer events seen so far, as "peer:link webrtc direct" lines. */
export function events(): string[] {
  return peerEvents;
}

export async function request(server: string, path: string, body?: unknown): Promise<FederationResponse> {
  return transport!.request(server, { method: 'PUT', path, body });
}

/** Round trips of federation requests on the open link, in ms. */
export async function timeRequests(server: string, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await transport!.request(server, { method: 'PUT', path: `/_matrix/federation/v1/send/${i}`, body: { pdus: [], edus: [] } });
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * Round trips of version 1 requests (one stream per request, a spare stream
 * opened ahead) on the direct link, as a dialler that falls back to it sends
 * them; the same-run comparison for version 2 above.
 */
export async function timeRequestsV1(server: string, count: number): Promise<number[]> {
  const { createSpareStreams, requestOverConnection, resolveProtocolOptions } = await import('../../src/p2p/federation-protocol.js');
  const { peerIdOfServerName } = await import('../../src/p2p/identity.js');
  const options = resolveProtocolOptions();
  const spares = createSpareStreams(options);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const connection = libp2p!.node.getConnections(peerIdOfServerName(server)).find((c) => c.limits === undefined)!;
    const t0 = performance.now();
    await requestOverConnection(connection, { method: 'PUT', path: `/_matrix/federation/v1/send/${i}`, body: { pdus: [], edus: [] } }, options, {}, spares);
    out.push(performance.now() - t0);
  }
  spares.clear();
  return out;
}

export async function stop(): Promise<void> {
  await transport?.close();
}

/** Debug aid: dials a multiaddr and reports the error text, if any. */
export async function tryDial(address: string): Promise<string> {
  const { multiaddr } = await import('@multiformats/multiaddr');
  try {
    const c = await libp2p!.node.dial(multiaddr(address), { signal: AbortSignal.timeout(15_000) });
    return `ok ${c.remoteAddr.toString()} limits=${JSON.stringify(c.limits ?? null, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`;
  } catch (error) {
    return `error ${(error as Error).name}: ${(error as Error).message}`;
  }
}

export function addrs(): string[] {
  return libp2p!.node.getMultiaddrs().map(String);
}

// Raw WebRTC data channel between two pages, signalled by the test through page.evaluate
// (non-trickle ICE): the limit the federation round trip is measured against.
let rawPc: RTCPeerConnection | undefined;
let rawChannel: RTCDataChannel | undefined;

function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((ok) => pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && ok()));
}

export async function rawRtcOffer(): Promise<string> {
  rawPc = new RTCPeerConnection({ iceServers: [] });
  rawChannel = rawPc.createDataChannel('bench', { ordered: true });
  await rawPc.setLocalDescription(await rawPc.createOffer());
  await gathered(rawPc);
  return JSON.stringify(rawPc.localDescription);
}

export async function rawRtcAnswer(offer: string): Promise<string> {
  rawPc = new RTCPeerConnection({ iceServers: [] });
  rawPc.addEventListener('datachannel', (e) => {
    const channel = e.channel;
    channel.addEventListener('message', (m) => channel.send(m.data as string));
  });
  await rawPc.setRemoteDescription(JSON.parse(offer) as RTCSessionDescriptionInit);
  await rawPc.setLocalDescription(await rawPc.createAnswer());
  await gathered(rawPc);
  return JSON.stringify(rawPc.localDescription);
}

export async function rawRtcFinish(answer: string): Promise<void> {
  await rawPc!.setRemoteDescription(JSON.parse(answer) as RTCSessionDescriptionInit);
  if (rawChannel!.readyState !== 'open') await new Promise((ok) => rawChannel!.addEventListener('open', ok, { once: true }));
}

/** Round trips of a ~100-byte message echoed by the other page, in ms. */
export async function rawRtcTimes(count: number): Promise<number[]> {
  const channel = rawChannel!;
  const payload = JSON.stringify({ method: 'PUT', path: '/_matrix/federation/v1/send/0', body: { pdus: [], edus: [] } });
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await new Promise<void>((ok) => {
      channel.addEventListener('message', () => ok(), { once: true });
      channel.send(payload);
    });
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * Time in ms to send `bytes` in 16 KiB messages (libp2p's WebRTC message size)
 * on the raw data channel and have all of them echoed back by the other page:
 * the wire's floor for a large answer such as a catch-up page.
 */
export async function rawRtcBulkMs(bytes: number, messageBytes = 16 * 1024): Promise<number> {
  const channel = rawChannel!;
  const piece = 'x'.repeat(messageBytes);
  const count = Math.ceil(bytes / piece.length);
  const t0 = performance.now();
  await new Promise<void>((ok) => {
    let echoed = 0;
    const onMessage = (): void => {
      if (++echoed < count) return;
      channel.removeEventListener('message', onMessage);
      ok();
    };
    channel.addEventListener('message', onMessage);
    void (async () => {
      for (let i = 0; i < count; i++) {
        while (channel.bufferedAmount > 1 << 20) await new Promise((drained) => setTimeout(drained, 1));
        channel.send(piece);
      }
    })();
  });
  return performance.now() - t0;
}

/**
 * Round trips of a ~100-byte message echoed on ONE long-lived libp2p stream
 * over the direct link, in ms: the floor of any protocol on libp2p's WebRTC
 * streams, without a stream per request.
 */
export async function timeLongStream(server: string, n: number): Promise<number[]> {
  const { peerIdOfServerName } = await import('../../src/p2p/identity.js');
  const conn = libp2p!.node.getConnections(peerIdOfServerName(server)).find((c) => c.limits === undefined)!;
  const stream = await conn.newStream('/hometab/bench-echo/1');
  const iterator = stream[Symbol.asyncIterator]();
  const times: number[] = [];
  const msg = new TextEncoder().encode('x'.repeat(100));
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    stream.send(msg);
    await iterator.next();
    times.push(performance.now() - t0);
  }
  stream.abort(new Error('done'));
  return times;
}

/** Installs the echo protocol used by timeLongStream. */
export async function installEcho(): Promise<void> {
  await libp2p!.node.handle('/hometab/bench-echo/1', async (stream) => {
    for await (const chunk of stream) stream.send(chunk);
  });
}

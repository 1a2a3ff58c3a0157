/**
 * Browser side of the replication tests and benchmarks in Chromium: bundled
 * with esbuild and loaded in a page, it boots a whole Hometab peer through
 * src/app/boot-peer.ts (IndexedDB profile, identity, homeserver, libp2p and
 * BroadcastChannel transports, replicator) and exposes `hometabPeer` for the
 * test to drive through page.evaluate. Users act through the homeserver's
 * client-server API (`handleClient`), as the app's matrix-js-sdk will.
 */
import { bootPeer, profileDatabase, type BootedPeer } from '../../src/app/boot-peer.js';
import { NO_RATE_LIMITS } from '../../src/homeserver/index.js';
import type { CatchUpProgress } from '../../src/p2p/catch-up.js';
import type { PeerInfo } from '../../src/p2p/transport.js';
export { rawIdbWrites } from '../bench/browser/raw-idb.js';

export { rawRtcOffer, rawRtcAnswer, rawRtcFinish, rawRtcTimes, rawRtcBulkMs } from './browser-entry.js';

let peer: BootedPeer | undefined;
const tokens = new Map<string, string>();
const catchUps: (CatchUpProgress & { at: number; epoch: number })[] = [];
const quiet = { debug() {}, warn() {}, error() {} };
let txn = 0;

export interface BootOptions {
  profile: string;
  relays?: string[];
  /** BroadcastChannel name; false for none. */
  channel?: string | false;
  /** Anti-entropy period (ms). */
  antiEntropyIntervalMs?: number;
  /** get_missing_events page size, and the most events one gap walk holds. */
  pageLimit?: number;
  maxEventsPerPull?: number;
  verbose?: boolean;
  /** Record every federation request made and answered, with its duration (see `traced`). */
  trace?: boolean;
}

export async function boot(options: BootOptions): Promise<string> {
  peer = await bootPeer({
    profile: options.profile,
    relays: options.relays ?? [],
    broadcastChannel: options.channel ?? false,
    broadcastHeartbeatMs: 250,
    requestTimeoutMs: 10_000,
    homeserver: { rateLimits: NO_RATE_LIMITS },
    replicator: {
      outbox: { backoffBaseMs: 200, backoffMaxMs: 2_000 },
      catchUp: {
        antiEntropyIntervalMs: options.antiEntropyIntervalMs ?? 2_000,
        ...(options.pageLimit ? { pageLimit: options.pageLimit } : {}),
        ...(options.maxEventsPerPull ? { maxEventsPerPull: options.maxEventsPerPull } : {}),
      },
    },
    log: options.verbose ? console : quiet,
  });
  peer.replicator.events.addEventListener('catchup:progress', (e) => {
    const now = performance.now();
    catchUps.push({ ...(e as CustomEvent<CatchUpProgress>).detail, at: Math.round(now), epoch: performance.timeOrigin + now });
  });
  if (options.trace) trace(peer);
  return peer.serverName;
}

interface Traced {
  dir: 'out' | 'in';
  path: string;
  ms: number;
  at: number;
  pdus?: number;
}
const traces: Traced[] = [];

/** Like `traced`, each with its start on the epoch clock (comparable across pages). */
export function tracedEpoch(): (Traced & { epoch: number })[] {
  return traces.map((t) => ({ ...t, epoch: performance.timeOrigin + t.at }));
}
function trace(booted: BootedPeer): void {
  const request = booted.transport.request.bind(booted.transport);
  (booted.transport as { request: typeof request }).request = async (server, req, options) => {
    const t0 = performance.now();
    try {
      return await request(server, req, options);
    } finally {
      const pdus = (req.body as { pdus?: unknown[] } | undefined)?.pdus?.length;
      traces.push({ dir: 'out', path: req.path.split('?')[0]!.replace(/[!$][^/]*/g, ':id'), ms: performance.now() - t0, at: t0, ...(pdus ? { pdus } : {}) });
    }
  };
  const handle = booted.homeserver.handleFederation.bind(booted.homeserver);
  (booted.homeserver as { handleFederation: typeof handle }).handleFederation = async (req, origin) => {
    const t0 = performance.now();
    try {
      return await handle(req, origin);
    } finally {
      traces.push({ dir: 'in', path: new URL(req.url).pathname.replace(/[!$][^/]*/g, ':id'), ms: performance.now() - t0, at: t0 });
    }
  };
}

/**
 * The wire's share of a catch-up alone: `server`'s forward pages of the room from its create event on, asked as
 * catch-up asks them (the next as soon as one arrives), each parsed and identified (format, event IDs, its
 * signature checks begun) as catch-up does, and nothing stored. Events, JSON bytes and pages, and the time taken.
 */
export async function forwardPagesOnly(server: string, roomId: string): Promise<{ events: number; bytes: number; pages: number; ms: number }> {
  const createId = await peer!.storage.read((t) => t.currentState.get(roomId, 'm.room.create', ''));
  const ask = (from: unknown) =>
    peer!.transport.request(server, { method: 'POST', path: `/_matrix/federation/unstable/org.hometab/forward/${encodeURIComponent(roomId)}`, body: { earliest_events: [createId], limit: 1000, ...(from ? { from } : {}) } });
  const t0 = performance.now();
  let events = 0;
  let bytes = 0;
  let pages = 0;
  for (let asked: ReturnType<typeof ask> | undefined = ask(undefined); asked; ) {
    const body = (await asked).body as { events?: unknown[]; next?: unknown };
    const list = body.events ?? [];
    if (list.length === 0) break;
    asked = body.next ? ask(body.next) : undefined;
    await new Promise((resolve) => setTimeout(resolve, 0));
    await peer!.homeserver.replication.eventIds(roomId, list);
    events += list.length;
    bytes += JSON.stringify(list).length;
    pages++;
  }
  return { events, bytes, pages, ms: performance.now() - t0 };
}

/** Federation requests recorded since boot (with `trace`). */
export function traced(): Traced[] {
  return traces;
}

export function serverName(): string {
  return peer!.serverName;
}

/** Whether the tab holds a relay reservation (reachable by name). */
export function reachable(): boolean {
  return peer!.libp2p!.node.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit'));
}

/** Links as the replicator's transport sees them (the best per server). */
export function peers(): PeerInfo[] {
  return peer!.transport.peers();
}

/** Links as libp2p alone sees them. */
export function libp2pPeers(): PeerInfo[] {
  return peer!.libp2p?.peers() ?? [];
}

/** Every catch-up progress event since boot, with when it came (`at`: ms since the page's start; `epoch`: epoch ms). */
export function catchUpLog(): (CatchUpProgress & { at: number; epoch: number })[] {
  return catchUps;
}

export async function close(): Promise<void> {
  await peer?.close();
  peer = undefined;
}

/** Deletes a profile's database (benchmarks start clean). */
export async function deleteProfile(profile: string): Promise<void> {
  await new Promise<void>((ok, fail) => {
    const request = indexedDB.deleteDatabase(profileDatabase(profile));
    request.onsuccess = () => ok();
    request.onerror = () => fail(request.error);
  });
}

interface Answer {
  status: number;
  json: any;
}

export async function api(user: string | null, method: string, path: string, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (user) headers.authorization = `Bearer ${tokens.get(user)}`;
  const response = await peer!.homeserver.handleClient(
    new Request(`http://localhost/_matrix/client/v3${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) }),
  );
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

async function ok(user: string | null, method: string, path: string, body?: unknown): Promise<any> {
  const answer = await api(user, method, path, body);
  if (answer.status !== 200) throw new Error(`${method} ${path}: ${answer.status} ${JSON.stringify(answer.json)}`);
  return answer.json;
}

/** Registers (or, after a reload, logs in) `localpart`; returns the user ID. */
export async function user(localpart: string): Promise<string> {
  const password = 'correct horse battery staple';
  let answer = await api(null, 'POST', '/register', { username: localpart, password, auth: { type: 'm.login.dummy' } });
  if (answer.status !== 200) answer = await api(null, 'POST', '/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: localpart }, password });
  if (answer.status !== 200) throw new Error(`user ${localpart}: ${answer.status} ${JSON.stringify(answer.json)}`);
  tokens.set(answer.json.user_id, answer.json.access_token);
  return answer.json.user_id;
}

export async function createRoom(userId: string, invite: string[] = []): Promise<string> {
  return (await ok(userId, 'POST', '/createRoom', { preset: 'private_chat', invite, name: 'replication' })).room_id;
}

export async function invite(userId: string, roomId: string, invitee: string): Promise<void> {
  await ok(userId, 'POST', `/rooms/${encodeURIComponent(roomId)}/invite`, { user_id: invitee });
}

/** Rooms `userId` is invited to, per /sync. */
export async function invites(userId: string): Promise<string[]> {
  const sync = await ok(userId, 'GET', '/sync?timeout=0');
  return Object.keys(sync.rooms?.invite ?? {});
}

export async function join(userId: string, roomId: string, via: string[] = []): Promise<void> {
  const query = via.map((s) => `server_name=${encodeURIComponent(s)}`).join('&');
  await ok(userId, 'POST', `/join/${encodeURIComponent(roomId)}${query ? `?${query}` : ''}`, {});
}

export async function send(userId: string, roomId: string, body: string): Promise<string> {
  return (await ok(userId, 'PUT', `/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${Date.now()}-${txn++}`, { msgtype: 'm.text', body })).event_id;
}

/** The room's messages as `userId` sees them, oldest first: [sender, body, event ID]. */
export async function messages(userId: string, roomId: string, limit = 200): Promise<Array<[string, string, string]>> {
  const page = await ok(userId, 'GET', `/rooms/${encodeURIComponent(roomId)}/messages?dir=b&limit=${limit}`);
  return (page.chunk as any[])
    .filter((e) => e.type === 'm.room.message')
    .map((e) => [e.sender, e.content.body, e.event_id] as [string, string, string])
    .reverse();
}

/** Joined members of the room as `userId` sees them. */
export async function members(userId: string, roomId: string): Promise<string[]> {
  return Object.keys((await ok(userId, 'GET', `/rooms/${encodeURIComponent(roomId)}/joined_members`)).joined ?? {}).sort();
}

let expected: string[] = [];

/** Remembers event IDs that `storedCount` counts. */
export function expectEvents(eventIds: string[]): void {
  expected = eventIds;
}

/** How many of the expected event IDs this server holds. */
export async function storedCount(): Promise<number> {
  return peer!.storage.read(async (txn) => (await txn.events.getMany(expected)).size);
}

/**
 * Whether the last expected event is stored: cheap enough to poll during a catch-up. An event is only accepted
 * once its prev_events are, so in a linear history this means every earlier one is stored too.
 */
export async function hasLastExpected(): Promise<boolean> {
  return peer!.storage.read((txn) => txn.events.has(expected[expected.length - 1]!));
}

// ---- benchmark helpers ----

let arrivals = new Map<string, number>();
let receiving: AbortController | undefined;

/** Starts a /sync long-poll loop as `userId` that notes when each message body first shows up (epoch ms, sub-ms). */
export async function startReceiving(userId: string): Promise<void> {
  arrivals = new Map();
  receiving = new AbortController();
  const signal = receiving.signal;
  let since = (await ok(userId, 'GET', '/sync?timeout=0')).next_batch as string;
  void (async () => {
    while (!signal.aborted) {
      const sync = await ok(userId, 'GET', `/sync?timeout=5000&since=${encodeURIComponent(since)}`);
      const at = performance.timeOrigin + performance.now();
      since = sync.next_batch;
      for (const room of Object.values((sync.rooms?.join ?? {}) as Record<string, any>)) {
        for (const e of room.timeline?.events ?? []) if (typeof e.content?.body === 'string' && !arrivals.has(e.content.body)) arrivals.set(e.content.body, at);
      }
    }
  })();
}

export function stopReceiving(): Record<string, number> {
  receiving?.abort();
  return Object.fromEntries(arrivals);
}

/** When each body first showed up in /sync so far (epoch ms). */
export function arrivalTimes(): Record<string, number> {
  return Object.fromEntries(arrivals);
}

export function arrived(): number {
  return arrivals.size;
}

const allSent: Record<string, number> = {};
/** Every message `sendSeries` sent so far, with its send time (epoch ms). */
export function sendTimes(): Record<string, number> {
  return allSent;
}

/** Sends `count` messages `${prefix}${i}` spaced by `gapMs`; returns each body's send time (epoch ms, sub-ms). */
export async function sendSeries(userId: string, roomId: string, prefix: string, count: number, gapMs: number): Promise<Record<string, number>> {
  const sent: Record<string, number> = {};
  for (let i = 0; i < count; i++) {
    const body = `${prefix}${i}`;
    sent[body] = performance.timeOrigin + performance.now();
    allSent[body] = sent[body];
    await send(userId, roomId, body);
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
  }
  return sent;
}

/** Sends `count` messages as fast as the server takes them; returns their event IDs and the sends/s. */
export async function sendMany(userId: string, roomId: string, prefix: string, count: number): Promise<{ ids: string[]; rate: number }> {
  const t0 = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await send(userId, roomId, `${prefix}${i}`));
  return { ids, rate: (count * 1000) / (performance.now() - t0) };
}


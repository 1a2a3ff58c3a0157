/**
 * A small stand-in for the homeserver's federation half (r7/federation),
 * with the exact port the replicator uses: handleFederation(Request, origin)
 * and `replication` {setClient, receivePdus, rooms, onMissingPrevs}, and the
 * storage outbox for everything outgoing (one record per destination and PDU,
 * written in one storage.write, so the replicator wakes on the commit).
 *
 * What it keeps from Matrix: a room is a DAG of events naming their parents;
 * event IDs are content hashes and are recomputed on receipt (a tampered copy
 * is refused whoever relays it); an event with unknown parents is parked and
 * reported; a local event names the forward extremities (capped at 10, as
 * Synapse does); destinations are the servers in the room before and after
 * the event; joins go make_join/send_join through a resident server that
 * then fans the join out; get_missing_events, event, and the unstable
 * extremities endpoint answer as the real server will.
 * What it leaves out: signatures, auth rules, and real state resolution.
 * "Resolved state" here is a deterministic function of the event set (per
 * state key, the event with the greatest (depth, event ID)), so two servers
 * agree on it exactly when they hold the same events, which is what the
 * replication layer is responsible for.
 */
import { canonicalJson, sha256, utf8 } from '../../../src/core/index.js';
import type { FederationClient, MissingPrevsListener, ReceiveResult, ReplicatedHomeserver, RoomSummary } from '../../../src/p2p/replication-port.js';
import type { Storage } from '../../../src/storage/types.js';

export interface FakeEvent {
  event_id: string;
  room_id: string;
  sender: string;
  origin: string;
  type: string;
  state_key?: string;
  content: Record<string, unknown>;
  prev_events: string[];
  depth: number;
  hashes: { sha256: string };
}

interface Room {
  events: Map<string, FakeEvent>;
  extremities: Set<string>;
  /** state key -> winning event, recomputed lazily. */
  state?: Map<string, FakeEvent>;
}

const MAX_PREV = 10;

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function hashOf(event: Omit<FakeEvent, 'event_id' | 'hashes'>): string {
  const { room_id, sender, origin, type, state_key, content, prev_events, depth } = event;
  return hex(sha256(utf8(canonicalJson({ room_id, sender, origin, type, ...(state_key !== undefined ? { state_key } : {}), content, prev_events, depth }))));
}

function userServer(userId: string): string {
  return userId.slice(userId.indexOf(':') + 1);
}

function wins(a: FakeEvent, b: FakeEvent): boolean {
  return a.depth !== b.depth ? a.depth > b.depth : a.event_id > b.event_id;
}

export interface FakeHomeserver extends ReplicatedHomeserver {
  readonly serverName: string;
  readonly userId: string;
  /** Creates a room with this server's user joined. */
  createRoom(): Promise<string>;
  /** Sends one event as this server's user; returns its ID. */
  send(roomId: string, type: string, content: Record<string, unknown>, stateKey?: string): Promise<FakeEvent>;
  /** Joins through `via` (make_join/send_join); false when that failed. */
  join(roomId: string, via: string): Promise<boolean>;
  /** Resolved state as (type|state_key) -> event ID. */
  state(roomId: string): Map<string, string>;
  eventIds(roomId: string): Set<string>;
  roomIds(): string[];
  /** Whether the local user is joined, by this server's own state. */
  joined(roomId: string): boolean;
  /** The user's membership by this server's state. */
  membership(roomId: string, userId: string): string | undefined;
  /** Servers joined by this server's state. */
  servers(roomId: string): string[];
  hasEvent(eventId: string): boolean;
  /** Counts of receive outcomes, for assertions. */
  readonly outcomes: Map<string, number>;
}

export function createFakeHomeserver(init: { serverName: string; storage: Storage; now?: () => number; onStored?: (event: FakeEvent) => void }): FakeHomeserver {
  const { serverName, storage } = init;
  const now = init.now ?? (() => Date.now());
  const userId = `@u:${serverName}`;
  const rooms = new Map<string, Room>();
  const byId = new Map<string, FakeEvent>();
  const listeners = new Set<MissingPrevsListener>();
  const seenTxns = new Set<string>();
  const outcomes = new Map<string, number>();
  let client: FederationClient | undefined;
  /** Member events stored since the last flush: written to the memberships store, whose commit notice tells the replicator. */
  let memberEvents: FakeEvent[] = [];

  async function flushMemberships(): Promise<void> {
    if (memberEvents.length === 0) return;
    const batch = memberEvents;
    memberEvents = [];
    await storage.write(async (txn) => {
      for (const e of batch) await txn.memberships.set({ roomId: e.room_id, userId: e.state_key!, membership: e.content.membership as never, eventId: e.event_id });
    });
  }

  function count(outcome: string): void {
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }

  function stateOf(room: Room): Map<string, FakeEvent> {
    if (room.state) return room.state;
    const state = new Map<string, FakeEvent>();
    for (const event of room.events.values()) {
      if (event.state_key === undefined) continue;
      const key = `${event.type}|${event.state_key}`;
      const current = state.get(key);
      if (!current || wins(event, current)) state.set(key, event);
    }
    room.state = state;
    return state;
  }

  function serversOf(room: Room): string[] {
    const out = new Set<string>();
    for (const event of stateOf(room).values()) if (event.type === 'm.room.member' && event.content.membership === 'join') out.add(userServer(event.state_key!));
    return [...out].sort();
  }

  function store(room: Room, event: FakeEvent): void {
    room.events.set(event.event_id, event);
    byId.set(event.event_id, event);
    for (const prev of event.prev_events) room.extremities.delete(prev);
    // An event is an extremity unless something we hold already names it as a parent.
    let referenced = false;
    for (const other of room.events.values()) if (other.prev_events.includes(event.event_id)) referenced = true;
    if (!referenced) room.extremities.add(event.event_id);
    room.state = undefined;
    if (event.type === 'm.room.member' && event.state_key !== undefined) memberEvents.push(event);
    init.onStored?.(event);
  }

  function parse(value: unknown): FakeEvent | undefined {
    if (typeof value !== 'object' || value === null) return undefined;
    const e = value as FakeEvent;
    if (typeof e.event_id !== 'string' || typeof e.room_id !== 'string' || !Array.isArray(e.prev_events) || typeof e.depth !== 'number') return undefined;
    const hash = hashOf(e);
    if (e.event_id !== `$${hash}` || e.hashes?.sha256 !== hash) return undefined;
    return { event_id: e.event_id, room_id: e.room_id, sender: e.sender, origin: e.origin, type: e.type, ...(e.state_key !== undefined ? { state_key: e.state_key } : {}), content: e.content, prev_events: [...e.prev_events], depth: e.depth, hashes: { sha256: hash } };
  }

  async function enqueue(destinations: string[], event: FakeEvent): Promise<void> {
    const targets = destinations.filter((d) => d !== serverName);
    if (targets.length === 0) return;
    await storage.write(async (txn) => {
      for (const destination of targets) await txn.outbound.enqueue(destination, { pdu: event as unknown as Record<string, never> });
    });
  }

  function build(roomId: string, type: string, content: Record<string, unknown>, stateKey: string | undefined, prev: string[], depth: number): FakeEvent {
    const body = { room_id: roomId, sender: userId, origin: serverName, type, ...(stateKey !== undefined ? { state_key: stateKey } : {}), content, prev_events: prev, depth };
    const hash = hashOf(body);
    return { ...body, event_id: `$${hash}`, hashes: { sha256: hash } };
  }

  function receiveOne(value: unknown, origin: string): ReceiveResult {
    const event = parse(value);
    if (!event) return { outcome: 'invalid', reason: 'bad shape or hash' };
    const room = rooms.get(event.room_id);
    if (!room) return { eventId: event.event_id, roomId: event.room_id, outcome: 'unknownRoom' };
    if (room.events.has(event.event_id)) return { eventId: event.event_id, roomId: event.room_id, outcome: 'duplicate' };
    const missing = event.prev_events.filter((p) => !room.events.has(p));
    if (missing.length > 0) {
      for (const listener of listeners) listener(origin, event.room_id, value as object, missing, event.event_id);
      return { eventId: event.event_id, roomId: event.room_id, outcome: 'missingPrevs', missing };
    }
    store(room, event);
    return { eventId: event.event_id, roomId: event.room_id, outcome: 'accepted' };
  }

  async function receivePdus(pdus: unknown[], origin: string): Promise<ReceiveResult[]> {
    const results = pdus.map((pdu) => receiveOne(pdu, origin));
    for (const r of results) count(r.outcome);
    await flushMemberships();
    return results;
  }

  function json(status: number, body: unknown): Response {
    return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  }

  /** Walks back from `latest`'s parents, not past `earliest`, breadth first, at most `limit` events. */
  function missingEvents(room: Room, earliest: string[], latest: string[], limit: number): FakeEvent[] {
    const stop = new Set(earliest);
    const seen = new Set(latest);
    const queue = latest.flatMap((id) => room.events.get(id)?.prev_events ?? []);
    const out: FakeEvent[] = [];
    while (queue.length > 0 && out.length < limit) {
      const id = queue.shift()!;
      if (seen.has(id) || stop.has(id)) continue;
      seen.add(id);
      const event = room.events.get(id);
      if (!event) continue;
      out.push(event);
      queue.push(...event.prev_events);
    }
    return out;
  }

  async function handleFederation(request: Request, origin: string): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname.split('/').map(decodeURIComponent);
    const body = request.method === 'GET' ? undefined : ((await request.json()) as Record<string, unknown>);
    // ['', '_matrix', 'federation', 'v1', name, ...]
    const name = path[4];
    if (request.method === 'PUT' && name === 'send') {
      const key = `${origin}\u0000${path[5]}`;
      if (!seenTxns.has(key)) {
        seenTxns.add(key);
        await receivePdus((body?.pdus as unknown[]) ?? [], origin);
      }
      return json(200, { pdus: {} });
    }
    if (request.method === 'POST' && name === 'get_missing_events') {
      const room = rooms.get(path[5]!);
      if (!room) return json(404, { errcode: 'M_NOT_FOUND', error: 'unknown room' });
      return json(200, { events: missingEvents(room, (body?.earliest_events as string[]) ?? [], (body?.latest_events as string[]) ?? [], Math.min(Number(body?.limit ?? 10), 100)) });
    }
    if (request.method === 'GET' && name === 'event') {
      const event = byId.get(path[5]!);
      return event ? json(200, { origin: serverName, origin_server_ts: now(), pdus: [event] }) : json(404, { errcode: 'M_NOT_FOUND', error: 'unknown event' });
    }
    if (request.method === 'POST' && url.pathname === '/_matrix/federation/unstable/org.hometab/extremities') {
      const asked = (body?.rooms ?? {}) as Record<string, unknown>;
      const out: Record<string, string[]> = {};
      for (const roomId of Object.keys(asked)) {
        const room = rooms.get(roomId);
        if (room) out[roomId] = [...room.extremities];
      }
      return json(200, { rooms: out });
    }
    if (request.method === 'GET' && name === 'make_join') {
      const room = rooms.get(path[5]!);
      if (!room) return json(404, { errcode: 'M_NOT_FOUND', error: 'unknown room' });
      const prev = [...room.extremities].sort().slice(0, MAX_PREV);
      const depth = Math.max(...prev.map((p) => room.events.get(p)!.depth)) + 1;
      return json(200, { event: { prev_events: prev, depth } });
    }
    if (request.method === 'PUT' && name === 'send_join') {
      const room = rooms.get(path[5]!);
      if (!room) return json(404, { errcode: 'M_NOT_FOUND', error: 'unknown room' });
      const before = serversOf(room);
      const [result] = await receivePdus([body], origin);
      if (result!.outcome !== 'accepted' && result!.outcome !== 'duplicate') return json(400, { errcode: 'M_BAD_JSON', error: result!.outcome });
      // The resident server announces the join to the room.
      await enqueue([...new Set([...before, ...serversOf(room)])].filter((s) => s !== origin), room.events.get(result!.eventId!)!);
      return json(200, { events: [...room.events.values()] });
    }
    return json(404, { errcode: 'M_UNRECOGNIZED', error: `${request.method} ${url.pathname}` });
  }

  async function send(roomId: string, type: string, content: Record<string, unknown>, stateKey?: string): Promise<FakeEvent> {
    const room = rooms.get(roomId);
    if (!room) throw new Error(`${serverName} is not in ${roomId}`);
    const before = serversOf(room);
    const prev = [...room.extremities].sort().slice(0, MAX_PREV);
    const depth = Math.max(0, ...prev.map((p) => room.events.get(p)!.depth)) + 1;
    const event = build(roomId, type, content, stateKey, prev, depth);
    store(room, event);
    await enqueue([...new Set([...before, ...serversOf(room)])], event);
    await flushMemberships();
    return event;
  }

  return {
    serverName,
    userId,
    outcomes,
    async handleFederation(request, origin) {
      return handleFederation(request, origin);
    },
    replication: {
      setClient(c) {
        client = c;
      },
      receivePdus,
      async rooms(): Promise<RoomSummary[]> {
        const out: RoomSummary[] = [];
        for (const [roomId, room] of rooms) {
          const servers = serversOf(room);
          if (servers.includes(serverName)) out.push({ roomId, extremities: [...room.extremities], servers });
        }
        return out;
      },
      onMissingPrevs(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      async eventIds(roomId, pdus) {
        return pdus.map((pdu) => {
          const event = parse(pdu);
          return event && event.room_id === roomId ? event.event_id : undefined;
        });
      },
      async storedEvents(ids) {
        return new Set(ids.filter((id) => byId.has(id)));
      },
    },
    async createRoom() {
      const create = build('', 'm.room.create', { creator: userId, nonce: Math.floor(now()) + serverName }, '', [], 1);
      const roomId = `!${create.hashes.sha256.slice(0, 24)}:${serverName}`;
      const room: Room = { events: new Map(), extremities: new Set() };
      rooms.set(roomId, room);
      store(room, build(roomId, 'm.room.create', create.content, '', [], 1));
      await send(roomId, 'm.room.member', { membership: 'join' }, userId);
      return roomId;
    },
    send,
    async join(roomId, via) {
      if (!client) return false;
      try {
        const template = await client.request(via, { method: 'GET', path: `/_matrix/federation/v1/make_join/${encodeURIComponent(roomId)}/${encodeURIComponent(userId)}` });
        if (template.status !== 200) return false;
        const { prev_events, depth } = (template.body as { event: { prev_events: string[]; depth: number } }).event;
        const event = build(roomId, 'm.room.member', { membership: 'join' }, userId, prev_events, depth);
        const answer = await client.request(via, { method: 'PUT', path: `/_matrix/federation/v2/send_join/${encodeURIComponent(roomId)}/${encodeURIComponent(event.event_id)}`, body: event });
        if (answer.status !== 200) return false;
        let room = rooms.get(roomId);
        if (!room) rooms.set(roomId, (room = { events: new Map(), extremities: new Set() }));
        const events = ((answer.body as { events: unknown[] }).events ?? []).map(parse).filter((e): e is FakeEvent => e !== undefined && e.room_id === roomId);
        events.sort((a, b) => a.depth - b.depth);
        for (const e of events) if (!room.events.has(e.event_id)) store(room, e);
        await flushMemberships();
        return room.events.has(event.event_id);
      } catch {
        return false;
      }
    },
    state(roomId) {
      const room = rooms.get(roomId);
      return new Map([...(room ? stateOf(room) : new Map<string, FakeEvent>())].map(([k, e]) => [k, e.event_id]));
    },
    eventIds(roomId) {
      return new Set(rooms.get(roomId)?.events.keys() ?? []);
    },
    roomIds: () => [...rooms.keys()],
    joined(roomId) {
      const room = rooms.get(roomId);
      return room !== undefined && stateOf(room).get(`m.room.member|${userId}`)?.content.membership === 'join';
    },
    membership(roomId, user) {
      const room = rooms.get(roomId);
      return room ? (stateOf(room).get(`m.room.member|${user}`)?.content.membership as string | undefined) : undefined;
    },
    servers(roomId) {
      const room = rooms.get(roomId);
      return room ? serversOf(room) : [];
    },
    hasEvent: (eventId) => byId.has(eventId),
  };
}

/**
 * An in-process network for the multi-peer simulation and for unit tests:
 * every FederationTransport it hands out talks to the others through one
 * seeded event queue, with per-link delay, drop rate, reordering and
 * partitions, and a topic pub/sub that forwards hop by hop over connected
 * links with a seen-cache, as gossipsub does (without its mesh maintenance).
 *
 * Determinism: time is virtual. Every delivery is an entry in a queue ordered
 * by (virtual time, sequence number) and all randomness comes from one
 * mulberry32 generator seeded by `seed`, so one seed gives one order of
 * deliveries. The queue is pumped one entry per macrotask, which lets the
 * handlers' microtasks (memory storage, crypto promises) settle between
 * deliveries; a handler that waits on real I/O or real timers makes the run
 * depend on the wall clock again. Request timeouts are queue entries too: a
 * dropped request fails with TIMEOUT after `requestTimeoutMs` of virtual time,
 * which takes no real time at all.
 *
 * The simulation prints its seed on failure; `new MemoryNetwork({ seed })`
 * replays it.
 */
import { P2PError } from './errors.js';
import {
  emitPeerEvent,
  runHandler,
  type FederationHandler,
  type FederationRequest,
  type FederationResponse,
  type FederationTransport,
  type PeerInfo,
  type RequestOptions,
} from './transport.js';

/** mulberry32: a tiny, fast, well-mixed 32-bit PRNG; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LinkOptions {
  /** Smallest one-way delay, virtual ms. @default 1 */
  minDelayMs?: number;
  /** Largest one-way delay, virtual ms (uniform between min and max). @default 10 */
  maxDelayMs?: number;
  /** Probability that one message (request, response or pubsub hop) is lost. @default 0 */
  dropRate?: number;
  /** Probability that a message is held back by an extra `reorderDelayMs`, overtaking order. @default 0 */
  reorderRate?: number;
  /** Extra delay of a reordered message, virtual ms. @default 50 */
  reorderDelayMs?: number;
}

export interface MemoryNetworkInit extends LinkOptions {
  /** Seed of all randomness (delays, drops, reordering). @default 1 */
  seed?: number;
  /** Virtual ms before a request without an answer fails with TIMEOUT. @default 5_000 */
  requestTimeoutMs?: number;
  /** Link every new transport to every existing one. @default true */
  autoConnect?: boolean;
  /** Largest JSON body carried, as on the libp2p protocol. @default 1_048_576 */
  maxBodyBytes?: number;
  /**
   * Virtual time stands still while a request handler runs, for up to this
   * many real ms per wait; 0 lets it run on. Handlers that wait in real time
   * (WebCrypto on Node's thread pool, a real homeserver) would otherwise see
   * the queue race ahead to their request's timeout. The bound keeps a
   * handler that awaits another virtual delivery from deadlocking. @default 0
   */
  holdTimeForHandlersMs?: number;
}

export interface MemoryNetworkStats {
  /** Messages put on a link (requests, responses, pubsub hops). */
  sent: number;
  delivered: number;
  dropped: number;
  /** Of `sent`, pubsub hops. */
  pubsubSent: number;
}

interface QueueEntry {
  at: number;
  seq: number;
  run: () => void;
}

interface Node {
  server: string;
  handler?: FederationHandler;
  events: EventTarget;
  topics: Map<string, Set<(data: Uint8Array, from: string) => void>>;
  seen: Set<string>;
  seenOrder: string[];
  publishSeq: number;
  closed: boolean;
}

const SEEN_CACHE = 10_000;

/**
 * The next macrotask: setImmediate where it exists (Node; setTimeout(0) is
 * clamped to 1 ms there, which would make a simulation crawl), else
 * setTimeout. Either way the microtasks queued so far run first.
 */
const nextTask: (fn: () => void) => void =
  typeof (globalThis as { setImmediate?: unknown }).setImmediate === 'function'
    ? (fn) => (globalThis as unknown as { setImmediate: (f: () => void) => void }).setImmediate(fn)
    : (fn) => setTimeout(fn, 0);

function linkKey(a: string, b: string): string {
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

export class MemoryNetwork {
  readonly random: () => number;
  readonly stats: MemoryNetworkStats = { sent: 0, delivered: 0, dropped: 0, pubsubSent: 0 };
  private readonly defaults: Required<LinkOptions>;
  private readonly linkOverrides = new Map<string, LinkOptions>();
  private readonly nodes = new Map<string, Node>();
  private readonly links = new Set<string>();
  private groups: Map<string, number> | undefined;
  private readonly queue: QueueEntry[] = [];
  private seq = 0;
  private pumping = false;
  /** Request handlers running now (holdTimeForHandlersMs). */
  private handlersRunning = 0;
  private readonly holdMs: number;
  private readonly requestTimeoutMs: number;
  private readonly autoConnect: boolean;
  private readonly maxBodyBytes: number;
  /** Current virtual time in ms. */
  now = 0;

  constructor(init: MemoryNetworkInit = {}) {
    this.random = mulberry32(init.seed ?? 1);
    this.defaults = {
      minDelayMs: init.minDelayMs ?? 1,
      maxDelayMs: init.maxDelayMs ?? 10,
      dropRate: init.dropRate ?? 0,
      reorderRate: init.reorderRate ?? 0,
      reorderDelayMs: init.reorderDelayMs ?? 50,
    };
    this.requestTimeoutMs = init.requestTimeoutMs ?? 5_000;
    this.autoConnect = init.autoConnect ?? true;
    this.maxBodyBytes = init.maxBodyBytes ?? 1 << 20;
    this.holdMs = init.holdTimeForHandlersMs ?? 0;
  }

  /** A transport for `server` on this network (again, after its previous one was closed: a restart). */
  transport(server: string): FederationTransport {
    if (this.nodes.get(server)?.closed === false) throw new Error(`${server} is already on this network`);
    const node: Node = { server, events: new EventTarget(), topics: new Map(), seen: new Set(), seenOrder: [], publishSeq: 0, closed: false };
    const before = this.upPairs();
    this.nodes.set(server, node);
    this.diff(before);
    if (this.autoConnect) for (const other of this.nodes.keys()) if (other !== server) this.connect(server, other);
    return this.facade(node);
  }

  /** Links two servers (peer:online on both unless partitioned apart). */
  connect(a: string, b: string): void {
    const key = linkKey(a, b);
    if (this.links.has(key)) return;
    const wasUp = this.up(a, b);
    this.links.add(key);
    if (!wasUp && this.up(a, b)) this.announce(a, b, 'peer:online');
  }

  /** Unlinks two servers. */
  disconnect(a: string, b: string): void {
    const key = linkKey(a, b);
    const wasUp = this.up(a, b);
    this.links.delete(key);
    if (wasUp) this.announce(a, b, 'peer:offline');
  }

  /** Overrides delay / drop / reordering for one link (both directions). */
  setLink(a: string, b: string, options: LinkOptions): void {
    this.linkOverrides.set(linkKey(a, b), options);
  }

  /**
   * Splits the network: servers in different groups cannot reach each
   * other; servers in no group form one more group. Messages already on a
   * link that is cut are lost on arrival.
   */
  partition(...groups: string[][]): void {
    const before = this.upPairs();
    const map = new Map<string, number>();
    groups.forEach((group, i) => group.forEach((server) => map.set(server, i)));
    this.groups = map;
    this.diff(before);
  }

  /** Ends any partition. */
  heal(): void {
    const before = this.upPairs();
    this.groups = undefined;
    this.diff(before);
  }

  /** Whether `a` can reach `b` now. */
  up(a: string, b: string): boolean {
    if (a === b || !this.links.has(linkKey(a, b))) return false;
    const na = this.nodes.get(a);
    const nb = this.nodes.get(b);
    if (!na || !nb || na.closed || nb.closed) return false;
    if (!this.groups) return true;
    const ga = this.groups.get(a) ?? -1;
    const gb = this.groups.get(b) ?? -1;
    return ga === gb;
  }

  /** Resolves once nothing is left to deliver (timeouts of pending requests included). */
  async settle(): Promise<void> {
    while (this.queue.length > 0 || this.pumping || this.handlersRunning > 0) await new Promise<void>((r) => nextTask(r));
  }

  /** Runs `fn` after `ms` of virtual time: timers in simulated code that stay deterministic. */
  schedule(ms: number, fn: () => void): void {
    this.enqueue(ms, fn);
  }

  private upPairs(): Set<string> {
    const out = new Set<string>();
    for (const key of this.links) {
      const [a, b] = key.split('\u0000') as [string, string];
      if (this.up(a, b)) out.add(key);
    }
    return out;
  }

  private diff(before: Set<string>): void {
    const after = this.upPairs();
    for (const key of before) if (!after.has(key)) this.announce(...(key.split('\u0000') as [string, string]), 'peer:offline');
    for (const key of after) if (!before.has(key)) this.announce(...(key.split('\u0000') as [string, string]), 'peer:online');
  }

  private announce(a: string, b: string, name: 'peer:online' | 'peer:offline'): void {
    const na = this.nodes.get(a);
    const nb = this.nodes.get(b);
    if (na && !na.closed) emitPeerEvent(na.events, name, { server: b, direct: true, via: 'memory' });
    if (nb && !nb.closed) emitPeerEvent(nb.events, name, { server: a, direct: true, via: 'memory' });
  }

  private linkOptions(a: string, b: string): Required<LinkOptions> {
    const override = this.linkOverrides.get(linkKey(a, b));
    return override ? { ...this.defaults, ...override } : this.defaults;
  }

  private enqueue(delay: number, run: () => void): void {
    const entry = { at: this.now + delay, seq: this.seq++, run };
    // Binary insertion keeps the queue sorted by (at, seq).
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.queue[mid]!;
      if (m.at < entry.at || (m.at === entry.at && m.seq < entry.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, entry);
    this.pump();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    let heldSince: number | undefined;
    const step = (): void => {
      const next = this.queue[0];
      if (!next) {
        this.pumping = false;
        return;
      }
      if (this.holdMs > 0 && this.handlersRunning > 0 && next.at > this.now) {
        // Hold virtual time while a handler works in real time (bounded, see holdTimeForHandlersMs).
        heldSince ??= Date.now();
        if (Date.now() - heldSince < this.holdMs) {
          setTimeout(step, 1);
          return;
        }
      }
      heldSince = undefined;
      const entry = this.queue.shift()!;
      this.now = Math.max(this.now, entry.at);
      try {
        entry.run();
      } finally {
        nextTask(step);
      }
    };
    nextTask(step);
  }

  /**
   * Puts one message on the link from `from` to `to`: it arrives after the
   * link's delay unless dropped, or unless the link is down when it arrives.
   * The random draws happen at send time, in send order, so they depend on
   * the seed only.
   */
  private send(from: string, to: string, deliver: () => void, pubsub = false): void {
    const link = this.linkOptions(from, to);
    this.stats.sent++;
    if (pubsub) this.stats.pubsubSent++;
    const dropped = this.random() < link.dropRate;
    let delay = link.minDelayMs + this.random() * (link.maxDelayMs - link.minDelayMs);
    if (this.random() < link.reorderRate) delay += link.reorderDelayMs;
    if (dropped) {
      this.stats.dropped++;
      return;
    }
    this.enqueue(delay, () => {
      if (!this.up(from, to)) {
        this.stats.dropped++;
        return;
      }
      this.stats.delivered++;
      deliver();
    });
  }

  private wire<T>(value: T): T {
    // Peers never share objects: every body crosses as JSON text, as on the wire.
    const text = JSON.stringify(value ?? null);
    if (text.length > this.maxBodyBytes) throw new P2PError('TOO_LARGE', `body of ${text.length} bytes exceeds ${this.maxBodyBytes}`);
    return JSON.parse(text) as T;
  }

  private deliverPubsub(node: Node, topic: string, id: string, data: Uint8Array, from: string): void {
    if (node.closed || node.seen.has(id)) return;
    node.seen.add(id);
    node.seenOrder.push(id);
    if (node.seenOrder.length > SEEN_CACHE) node.seen.delete(node.seenOrder.shift()!);
    const listeners = node.topics.get(topic);
    if (!listeners) return; // like gossipsub, a peer not subscribed to the topic does not forward it
    for (const listener of listeners) {
      try {
        listener(data.slice(), from);
      } catch {
        // A subscriber's bug must not stop delivery to the others.
      }
    }
    this.forward(node, topic, id, data, from);
  }

  private forward(node: Node, topic: string, id: string, data: Uint8Array, except: string | undefined): void {
    for (const [server, peer] of this.nodes) {
      if (server === node.server || server === except || !this.up(node.server, server) || !peer.topics.has(topic)) continue;
      this.send(node.server, server, () => this.deliverPubsub(peer, topic, id, data, node.server), true);
    }
  }

  private facade(node: Node): FederationTransport {
    const network = this;
    return {
      localServer: node.server,
      events: node.events,
      request(server: string, request: FederationRequest, options: RequestOptions = {}): Promise<FederationResponse> {
        return new Promise<FederationResponse>((resolve, reject) => {
          if (node.closed) return reject(new P2PError('CLOSED', 'transport closed'));
          if (options.signal?.aborted) return reject(new P2PError('ABORTED', 'aborted by the caller'));
          let done = false;
          const finish = (fn: () => void): void => {
            if (done) return;
            done = true;
            options.signal?.removeEventListener('abort', onAbort);
            fn();
          };
          const onAbort = (): void => finish(() => reject(new P2PError('ABORTED', 'aborted by the caller')));
          options.signal?.addEventListener('abort', onAbort, { once: true });
          if (!network.up(node.server, server)) {
            network.enqueue(0, () => finish(() => reject(new P2PError('UNREACHABLE', `${server} is not reachable from ${node.server}`))));
            return;
          }
          let wired: FederationRequest;
          try {
            wired = network.wire(request);
          } catch (error) {
            return finish(() => reject(error));
          }
          network.enqueue(options.timeoutMs ?? network.requestTimeoutMs, () => finish(() => reject(new P2PError('TIMEOUT', `${request.method} ${request.path} to ${server}: timed out`))));
          network.send(node.server, server, () => {
            const target = network.nodes.get(server)!;
            network.handlersRunning++;
            void runHandler(target.handler, node.server, wired).then((response) => {
              network.handlersRunning--;
              let answer: FederationResponse;
              try {
                answer = network.wire(response);
              } catch (error) {
                answer = { status: 500, body: { errcode: 'M_TOO_LARGE', error: (error as Error).message } };
              }
              network.send(server, node.server, () => finish(() => resolve(answer)));
            });
          });
        });
      },
      handle(handler) {
        node.handler = handler;
      },
      peers(): PeerInfo[] {
        const out: PeerInfo[] = [];
        for (const server of network.nodes.keys()) if (network.up(node.server, server)) out.push({ server, direct: true, via: 'memory' });
        return out;
      },
      async publish(topic, data) {
        if (node.closed) throw new P2PError('CLOSED', 'transport closed');
        const id = `${node.server}/${node.publishSeq++}`;
        node.seen.add(id);
        node.seenOrder.push(id);
        network.forward(node, topic, id, data.slice(), undefined);
      },
      subscribe(topic, onMessage) {
        let set = node.topics.get(topic);
        if (!set) node.topics.set(topic, (set = new Set()));
        set.add(onMessage);
        return () => {
          set!.delete(onMessage);
          if (set!.size === 0) node.topics.delete(topic);
        };
      },
      async close() {
        if (node.closed) return;
        const before = network.upPairs();
        node.closed = true;
        network.diff(before);
      },
    };
  }
}

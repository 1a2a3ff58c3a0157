/**
 * What the replicator needs from the homeserver, and from time. The
 * homeserver half is declared here structurally (p2p never imports
 * src/homeserver): the federation handler, plus a small `replication` port
 * through which PDUs fetched or gossiped by p2p are verified and stored, the
 * rooms and their forward extremities are listed, and parked events with
 * missing parents are reported. Outgoing traffic does not pass through this
 * port at all: the homeserver writes it to the storage outbox in the same
 * transaction as the event, and the replicator reads it from there.
 *
 * The clock is injected so that the simulation runs on the memory network's
 * virtual time with seeded jitter, and production on real timers.
 */
import type { FederationRequest, FederationResponse, RequestOptions } from './transport.js';

export type ReceiveOutcome = 'accepted' | 'softFailed' | 'rejected' | 'duplicate' | 'invalid' | 'missingPrevs' | 'unknownRoom';

export interface ReceiveResult {
  eventId?: string;
  roomId?: string;
  outcome: ReceiveOutcome;
  /** With `missingPrevs`: the prev_events this server does not hold. */
  missing?: string[];
  reason?: string;
}

/** How the homeserver makes outgoing federation requests; the transport is one. */
export interface FederationClient {
  request(server: string, request: FederationRequest, options?: RequestOptions): Promise<FederationResponse>;
}

export interface RoomSummary {
  roomId: string;
  /** This server's forward extremities of the room. */
  extremities: string[];
  /** Servers with a joined member (this one may be listed or not). */
  servers: string[];
  /** Depth of the deepest forward extremity, when known (catch-up estimates a gap's size from it). */
  maxDepth?: number;
}

/** Called with a PDU the homeserver could not store because some prev_events are unknown. */
export type MissingPrevsListener = (origin: string, roomId: string, pdu: object, missing: string[], eventId?: string) => void;

export interface ReplicationPort {
  /** Installs (or removes) the client the homeserver uses for make_join, invites, backfill... */
  setClient(client: FederationClient | undefined): void;
  /** Runs the receive checks on each PDU, in order, and stores those that pass; `origin` is the link they came over. */
  receivePdus(pdus: unknown[], origin: string): Promise<ReceiveResult[]>;
  /** The rooms this server takes part in. */
  rooms(): Promise<RoomSummary[]>;
  /**
   * The event ID of each fetched PDU of a room, nothing stored (undefined: malformed, or not of that room);
   * the same objects given to receivePdus afterwards are not checked twice.
   */
  eventIds(roomId: string, pdus: readonly unknown[]): Promise<(string | undefined)[]>;
  /** Which of these events this server holds. */
  storedEvents(eventIds: readonly string[]): Promise<Set<string>>;
  /** Subscribes to parked events; returns the unsubscribe function. */
  onMissingPrevs(listener: MissingPrevsListener): () => void;
}

/** The homeserver as the replicator sees it. */
export interface ReplicatedHomeserver {
  /** The Matrix server-server API; `origin` is the authenticated peer. */
  handleFederation(request: Request, origin: string): Promise<Response>;
  readonly replication: ReplicationPort;
}

/** Time and randomness of the replicator. */
export interface ReplicatorClock {
  /** ms, monotonic enough for backoff bookkeeping. */
  now(): number;
  /** Runs `fn` after `ms`; returns a cancel function. */
  setTimer(fn: () => void, ms: number): () => void;
  /** Floats in [0, 1) for jitter. */
  random(): number;
}

/** Real time: Date.now, setTimeout (unref'd in Node so timers never keep a process alive), Math.random. */
export const systemClock: ReplicatorClock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const handle = setTimeout(fn, ms) as unknown as { unref?: () => void };
    handle.unref?.();
    return () => clearTimeout(handle as unknown as ReturnType<typeof setTimeout>);
  },
  random: () => Math.random(),
};

export interface ReplicatorLog {
  debug(message: string, detail?: unknown): void;
  warn(message: string, detail?: unknown): void;
}

export const silentLog: ReplicatorLog = { debug() {}, warn() {} };

/**
 * The delay before retry number `attempt` (1 = the first retry): exponential
 * from `baseMs`, capped at `maxMs`, then shortened by up to `jitter` (a
 * fraction) so that peers that failed together do not retry together.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, jitter: number, random: () => number): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.max(1, Math.round(raw * (1 - jitter * random())));
}

/** The gossipsub topic of a room. Versioned, so a later wire format gets a new topic. */
export function roomTopic(roomId: string): string {
  return `/hometab/room/1/${roomId}`;
}

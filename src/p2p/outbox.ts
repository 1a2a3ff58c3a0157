/**
 * The outbox sender: delivers what the homeserver queued in the storage
 * outbox (`txn.outbound`, one record per destination and PDU or EDU, written
 * in the same transaction as the event) as Matrix transactions,
 * `PUT /_matrix/federation/v1/send/{txnId}`, one destination at a time.
 *
 * It owns delivery order and retry, nothing else. Per destination exactly
 * one transaction is outstanding at a time (the in-flight bound is 1, as in
 * Synapse's per-destination queue): acknowledging "everything up to seq N" is
 * then exact, and the receiver sees a server's events in the order they were
 * written. A transaction is the oldest
 * records of the queue, at most 50 PDUs and 100 EDUs as the spec allows; its
 * ID is derived from the seqs it carries, so a transaction resent after a
 * crash or reload has the ID the receiver already saw and is deduplicated
 * there. A 200 acknowledges it (per-PDU errors in the body are the
 * receiver's verdict, not a reason to resend). Unreachable, timeouts, 429
 * and 5xx retry with exponential backoff and jitter; a 400 drops the batch,
 * since the same bytes would be refused again and would block the queue.
 * The sender wakes on the storage's commit notice `{kind: 'outbound'}` and
 * when the destination comes online (which also ends its backoff): the
 * queue is in storage, so a reloaded tab starts where it stopped.
 *
 * The hot path has no wait in it: once a read has seen a destination's
 * whole queue, the sender keeps a copy from the commit notices (which carry
 * the committed record), so a fresh event goes on the wire from the notice
 * itself, before the local send has answered its client, with no read of
 * storage; the acknowledgement is written behind it, in order. Records that
 * arrive while a transaction is in flight go together in the next one. Only
 * a backoff (after a failure) delays a send, as before.
 *
 * A backlog (a destination that was away: its queue, read from storage,
 * holds more than `backlogPdus` PDUs) goes by catch-up, not PDU by PDU: of
 * each page of the queue only the newest PDU of each room and every state
 * PDU and EDU are sent, and the messages before them are acknowledged
 * unsent. The receiver lacks the newest one's parents and fetches the gap
 * behind it (catch-up.ts, from this server or any other), as its own
 * anti-entropy does when it returns, so it stores each event once instead
 * of once by each path. Nothing is lost: a local event lists the room's
 * forward extremities, which lead to every earlier event, as parents, and
 * anti-entropy brings any event that is still an extremity here.
 *
 * Non-state PDUs of rooms in gossip mode (see replicator.ts) are not sent
 * here: they go to `onGossip` once and are acknowledged, so a message in a
 * room with 200 servers costs one publish, not 200 requests. State events
 * (membership, power levels, bans...) are always sent directly, even in
 * gossip rooms: they are rare, they decide who is in the room and hence
 * where everything else goes, and a server that missed its own ban or a
 * peer's join by gossip would disagree with the others about whom to ask
 * (the simulation found exactly that). EDUs are always sent directly too:
 * they are unsigned, and a receiver accepts them only from their own
 * server's link.
 */
import { isRetryable } from './errors.js';
import { backoffDelay, type ReplicatorClock, type ReplicatorLog } from './replication-port.js';
import type { FederationTransport } from './transport.js';
import type { OutboundRecord, Storage } from '../storage/types.js';

export interface OutboxOptions {
  /** PDUs per transaction (the spec's limit). @default 50 */
  maxPdusPerTransaction?: number;
  /** EDUs per transaction (the spec's limit). @default 100 */
  maxEdusPerTransaction?: number;
  /** First retry delay after a failed send. @default 500 */
  backoffBaseMs?: number;
  /** Longest retry delay. @default 60_000 */
  backoffMaxMs?: number;
  /** Fraction by which a retry delay is randomly shortened. @default 0.5 */
  backoffJitter?: number;
  /** Time allowed per transaction. @default the transport's request timeout */
  requestTimeoutMs?: number;
  /** Records counted when reporting queue length; a longer queue is reported as this many with `more: true`. @default 1_000 */
  queueReportLimit?: number;
  /** PDUs in a queue read from storage above which it is a backlog, left to the receiver's catch-up (see above). @default 200 */
  backlogPdus?: number;
}

/** Detail of an `outbox:queue` event. */
export interface OutboxQueueState {
  destination: string;
  /** Records waiting (at most queueReportLimit). */
  queued: number;
  /** True when more than `queued` are waiting. */
  more: boolean;
  /** A transaction to this destination is on the wire. */
  inFlight: boolean;
  /** Failed attempts since the last success. */
  failures: number;
  /** When the next retry is due (clock ms), if backing off. */
  retryAt?: number;
}

export interface OutboxInit extends OutboxOptions {
  storage: Storage;
  transport: FederationTransport;
  clock: ReplicatorClock;
  log: ReplicatorLog;
  /** Receives `outbox:queue` events. */
  events: EventTarget;
  /** True when the room's non-state PDUs go by gossip instead of directly. */
  gossipRoom(roomId: string): boolean;
  /** Publishes one PDU on its room's topic (deduplicates by itself). */
  onGossip(roomId: string, pdu: Record<string, unknown>): void;
}

export interface OutboxSender {
  start(): Promise<void>;
  stop(): void;
  /** Sends the destination's queue now (ends its backoff when `resetBackoff`). */
  kick(destination: string, resetBackoff?: boolean): void;
  /** Per-destination state. */
  state(): OutboxQueueState[];
  /** True when nothing is in flight and no destination has queued records known to this sender. */
  idle(): boolean;
}

interface DestinationState {
  inFlight: boolean;
  failures: number;
  retryAt?: number;
  cancelRetry?: () => void;
  /** A wake-up arrived while a send was in flight: look again after it. */
  again: boolean;
  queued: number;
  more: boolean;
  /**
   * Exactly the records queued in storage and not yet acknowledged, once a
   * read has seen the whole queue; kept from the commit notices after that,
   * so a fresh record is sent without reading storage. Undefined until known
   * and whenever in doubt (storage failed, queue too long).
   */
  mirror?: OutboundRecord[];
  /** Records noticed while the queue is being read (set only then). */
  noticed?: OutboundRecord[];
  /** The storage writes of acknowledgements, in order. */
  acking: Promise<void>;
  /** The highest seq acknowledged in memory whose write has not begun (it merges into the next write). */
  ackWaiting?: number;
  acksPending: number;
}

type Item = { record: OutboundRecord; kind: 'pdu'; pdu: Record<string, unknown> } | { record: OutboundRecord; kind: 'edu'; edu: Record<string, unknown> } | { record: OutboundRecord; kind: 'bad' };

function classify(record: OutboundRecord): Item {
  const payload = record.payload as Record<string, unknown> | null;
  if (payload && typeof payload === 'object' && !Array.isArray(payload)) {
    const pdu = payload.pdu;
    if (pdu && typeof pdu === 'object' && !Array.isArray(pdu)) return { record, kind: 'pdu', pdu: pdu as Record<string, unknown> };
    const edu = payload.edu;
    if (edu && typeof edu === 'object' && !Array.isArray(edu)) return { record, kind: 'edu', edu: edu as Record<string, unknown> };
  }
  return { record, kind: 'bad' };
}

export function createOutboxSender(init: OutboxInit): OutboxSender {
  const maxPdus = init.maxPdusPerTransaction ?? 50;
  const maxEdus = init.maxEdusPerTransaction ?? 100;
  const baseMs = init.backoffBaseMs ?? 500;
  const maxMs = init.backoffMaxMs ?? 60_000;
  const jitter = init.backoffJitter ?? 0.5;
  const reportLimit = init.queueReportLimit ?? 1_000;
  const backlogPdus = init.backlogPdus ?? 200;
  const { storage, transport, clock, log } = init;
  const local = transport.localServer;
  const destinations = new Map<string, DestinationState>();
  let stopped = true;
  let unsubscribe: (() => void) | undefined;
  const onOnline = (event: Event): void => {
    const server = (event as CustomEvent<{ server: string }>).detail?.server;
    if (typeof server === 'string' && destinations.has(server)) kick(server, true);
  };

  function stateOf(destination: string): DestinationState {
    let state = destinations.get(destination);
    if (!state) destinations.set(destination, (state = { inFlight: false, failures: 0, again: false, queued: 0, more: false, acking: Promise.resolve(), acksPending: 0 }));
    return state;
  }

  function report(destination: string, state: DestinationState): void {
    const detail: OutboxQueueState = { destination, queued: state.queued, more: state.more, inFlight: state.inFlight, failures: state.failures, ...(state.retryAt !== undefined ? { retryAt: state.retryAt } : {}) };
    init.events.dispatchEvent(new CustomEvent<OutboxQueueState>('outbox:queue', { detail }));
  }

  function kick(destination: string, resetBackoff = false): void {
    if (stopped) return;
    const state = stateOf(destination);
    if (resetBackoff && state.cancelRetry) {
      state.cancelRetry();
      state.cancelRetry = undefined;
      state.retryAt = undefined;
    }
    if (state.inFlight) {
      state.again = true;
      return;
    }
    // While backing off, new records wait for the retry: hammering an unreachable peer helps nobody.
    if (state.cancelRetry) return;
    void drain(destination, state);
  }

  /** The records to send next: the mirror when it is known, else the stored queue (which makes the mirror known when it is read whole). */
  async function nextRecords(destination: string, state: DestinationState): Promise<{ records: OutboundRecord[]; read: boolean }> {
    const limit = Math.max(reportLimit, maxPdus + maxEdus);
    if (state.mirror) return { records: state.mirror.slice(0, limit), read: false };
    // Acknowledgements still being written would come back from the peek as unsent.
    await state.acking;
    state.noticed = [];
    let records: OutboundRecord[];
    try {
      records = await storage.read((txn) => txn.outbound.peek(destination, limit + 1));
    } catch (error) {
      state.noticed = undefined;
      throw error;
    }
    const noticed = state.noticed;
    state.noticed = undefined;
    if (records.length <= limit) {
      // The whole queue: from now on commit notices keep it, and the hot path needs no read.
      const seen = new Set(records.map((r) => r.seq));
      state.mirror = [...records, ...noticed.filter((r) => !seen.has(r.seq))].sort((x, y) => x.seq - y.seq);
    }
    state.queued = Math.min(records.length, reportLimit);
    state.more = records.length > reportLimit;
    return { records: records.slice(0, limit), read: true };
  }

  /** A committed record for `destination`, from the storage's commit notice. */
  function noticed(destination: string, record: OutboundRecord): void {
    const state = destinations.get(destination);
    if (!state) return; // the first kick reads the queue whole
    if (state.noticed) state.noticed.push(record);
    if (!state.mirror) return;
    if (state.mirror.length >= reportLimit) {
      // A long queue (a peer away for a while) is read from storage in pieces, not held in memory.
      state.mirror = undefined;
      return;
    }
    state.mirror.push(record);
  }

  /**
   * Acknowledges up to `upTo`: at once in memory, in storage behind the
   * send path (a crash before it commits resends a transaction the receiver
   * deduplicates). Writes stay in order, one after another; acknowledgements
   * made while one is being written go together in the next, so a busy
   * destination costs fewer writes that the homeserver's own must queue
   * behind (IndexedDB runs read-write transactions one at a time).
   */
  function acknowledge(destination: string, state: DestinationState, upTo: number): void {
    if (state.mirror) state.mirror = state.mirror.filter((r) => r.seq > upTo);
    if (state.ackWaiting !== undefined) {
      state.ackWaiting = Math.max(state.ackWaiting, upTo);
      return;
    }
    state.ackWaiting = upTo;
    state.acksPending++;
    state.acking = state.acking
      .then(() => {
        const to = state.ackWaiting!;
        state.ackWaiting = undefined;
        return storage.write((txn) => txn.outbound.ack(destination, to)).catch((error: unknown) => {
          if (!stopped) log.warn(`outbox: acknowledging ${destination} up to ${to} failed; the queue is read again`, error);
          state.mirror = undefined;
        });
      })
      .finally(() => state.acksPending--);
  }

  /** In a backlog page: the non-state PDUs that a later PDU of their room in the page descends from. */
  function coveredByLater(items: readonly Item[]): Set<Item> {
    const covered = new Set<Item>();
    if (items.filter((item) => item.kind === 'pdu').length <= backlogPdus) return covered;
    const laterInRoom = new Set<string>();
    for (let i = items.length - 1; i >= 0; i--) {
      const item = items[i]!;
      if (item.kind !== 'pdu' || typeof item.pdu.room_id !== 'string') continue;
      if (laterInRoom.has(item.pdu.room_id) && item.pdu.state_key === undefined) covered.add(item);
      laterInRoom.add(item.pdu.room_id);
    }
    return covered;
  }

  async function drain(destination: string, state: DestinationState): Promise<void> {
    state.inFlight = true;
    state.again = false;
    let retry = false;
    try {
      for (;;) {
        if (stopped) return;
        const { records, read } = await nextRecords(destination, state);
        if (state.mirror) {
          state.queued = Math.min(state.mirror.length, reportLimit);
          state.more = state.mirror.length > reportLimit;
        }
        if (records.length === 0) break;
        if (destination === local) {
          // Nothing is ever sent to ourselves; a homeserver that queued it anyway is forgiven.
          acknowledge(destination, state, records[records.length - 1]!.seq);
          continue;
        }
        // The oldest records that fit one transaction; a contiguous prefix, so one ack covers them.
        const pdus: Record<string, unknown>[] = [];
        const edus: Record<string, unknown>[] = [];
        let lastSeq = -Infinity;
        let firstSeq = records[0]!.seq;
        const items = records.map(classify);
        const covered = read ? coveredByLater(items) : new Set<Item>();
        for (const item of items) {
          const { record } = item;
          if (covered.has(item)) {
            lastSeq = record.seq;
            continue;
          }
          if (item.kind === 'pdu') {
            const roomId = item.pdu.room_id;
            if (typeof roomId === 'string' && item.pdu.state_key === undefined && init.gossipRoom(roomId)) init.onGossip(roomId, item.pdu);
            else if (pdus.length < maxPdus) pdus.push(item.pdu);
            else break;
          } else if (item.kind === 'edu') {
            if (edus.length < maxEdus) edus.push(item.edu);
            else break;
          } else {
            log.warn('outbox: dropping a record that is neither {pdu} nor {edu}', { destination, seq: record.seq });
          }
          lastSeq = record.seq;
        }
        if (pdus.length === 0 && edus.length === 0) {
          acknowledge(destination, state, lastSeq);
          continue;
        }
        report(destination, state);
        const txnId = `${firstSeq}-${lastSeq}`;
        let status: number;
        try {
          const response = await transport.request(
            destination,
            { method: 'PUT', path: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`, body: { origin: local, origin_server_ts: clock.now(), pdus, edus } },
            init.requestTimeoutMs !== undefined ? { timeoutMs: init.requestTimeoutMs } : {},
          );
          status = response.status;
        } catch (error) {
          if (!isRetryable(error)) log.warn(`outbox: send to ${destination} failed`, error);
          retry = true;
          break;
        }
        if (status === 200 || status === 400) {
          if (status === 400) log.warn(`outbox: ${destination} refused transaction ${txnId} with 400; dropped`);
          acknowledge(destination, state, lastSeq);
          state.failures = 0;
          continue;
        }
        log.debug(`outbox: ${destination} answered ${status}; will retry`);
        retry = true;
        break;
      }
    } catch (error) {
      // Storage failed (closed on shutdown, most likely): try again later rather than lose the wake-up.
      if (!stopped) log.warn('outbox: drain failed', error);
      state.mirror = undefined;
      retry = !stopped;
    } finally {
      state.inFlight = false;
    }
    if (stopped) return;
    if (retry) {
      state.failures++;
      const delay = backoffDelay(state.failures, baseMs, maxMs, jitter, clock.random);
      state.retryAt = clock.now() + delay;
      state.cancelRetry = clock.setTimer(() => {
        state.cancelRetry = undefined;
        state.retryAt = undefined;
        kick(destination);
      }, delay);
    } else {
      state.retryAt = undefined;
      state.queued = 0;
      state.more = false;
    }
    report(destination, state);
    if (!retry && state.again) kick(destination);
  }

  return {
    async start() {
      if (!stopped) return;
      stopped = false;
      unsubscribe = storage.subscribe((commit) => {
        for (const change of commit.changes) {
          if (change.kind !== 'outbound') continue;
          noticed(change.destination, change.record);
          kick(change.destination);
        }
      });
      transport.events.addEventListener('peer:online', onOnline);
      const queued = await storage.read((txn) => txn.outbound.destinations());
      for (const destination of queued) kick(destination);
    },
    stop() {
      stopped = true;
      unsubscribe?.();
      transport.events.removeEventListener('peer:online', onOnline);
      for (const state of destinations.values()) {
        state.cancelRetry?.();
        state.cancelRetry = undefined;
      }
    },
    kick,
    state() {
      return [...destinations].map(([destination, s]) => ({ destination, queued: s.queued, more: s.more, inFlight: s.inFlight, failures: s.failures, ...(s.retryAt !== undefined ? { retryAt: s.retryAt } : {}) }));
    },
    idle() {
      for (const s of destinations.values()) if (s.inFlight || s.queued > 0 || s.cancelRetry || s.acksPending > 0) return false;
      return true;
    },
  };
}

/**
 * The contract between the homeserver and the replication layer (src/p2p),
 * which never imports the homeserver: p2p's FederationTransport offers
 * `request` structurally as FederationClient, and the homeserver offers the
 * ReplicationPort for what p2p drives (PDUs from gossip and catch-up,
 * anti-entropy's room list, missing parents to fetch). Only composition roots
 * (app/, node/) and tests wire the two together.
 */
import type { PduOutcome } from '../rooms/receive.js';

export type { PduOutcome } from '../rooms/receive.js';

/** One server-server API request to a named server; the transport authenticates both ends. */
export interface FederationClient {
  request(
    server: string,
    request: { method: 'GET' | 'PUT' | 'POST'; path: string; body?: unknown },
    options?: { timeoutMs?: number },
  ): Promise<{ status: number; body: unknown }>;
  /**
   * The servers connected right now, when the client knows (p2p's transports do): remote media is asked of
   * these first, so an offline origin costs no dial timeout per file.
   */
  peers?(): ReadonlyArray<{ server: string }>;
}

export interface ReplicationPort {
  /**
   * Outbound federation (joins via other servers, invites to remote users, leaves, remote profile/keys/devices/media,
   * backfill) uses this; undefined = offline (those requests fail with a clear Matrix error, local work goes on).
   */
  setClient(client: FederationClient | undefined): void;
  /**
   * Runs PDUs (any order, from any peer — signatures make every copy trustworthy) through the receive checks,
   * topologically sorted, verified in batches. Events whose prev_events (or auth_events) are unknown come back as
   * 'missingPrevs' with `missing` listed, NOT fetched here.
   */
  receivePdus(pdus: unknown[], origin: string): Promise<PduOutcome[]>;
  /** Rooms this server takes part in (a local user joined), with forward extremities and the other servers that have joined members. */
  rooms(): Promise<Array<{ roomId: string; extremities: string[]; servers: string[]; maxDepth: number }>>;
  /** Steps 1–2 of the receive checks on fetched PDUs of a room, nothing stored: each one's event ID (undefined if malformed); receivePdus does not redo them for the same objects. */
  eventIds(roomId: string, pdus: readonly unknown[]): Promise<(string | undefined)[]>;
  /** Which of these events are stored here. */
  storedEvents(eventIds: readonly string[]): Promise<Set<string>>;
  /** Listener for PDUs that arrived (via /send) with missing prev_events: p2p fetches and retries. */
  onMissingPrevs(listener: (origin: string, roomId: string, pdu: object, missing: string[]) => void): () => void;
}

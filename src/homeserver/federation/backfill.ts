/**
 * Fetching history this server does not hold (server-server API
 * "Backfilling"), as Synapse does when a client pages back to the oldest
 * events it has: the room's backward extremities (the missing parents of its
 * earliest timeline events) are sent as `v` to `GET /backfill` on a server in
 * the room, connected ones first; the answer (which the peer has already
 * filtered by history visibility for this server) goes through the room
 * engine's importHistory, which checks every event and stores it behind the
 * timeline. The peer's `state` answers are asked for at the batch's far edge.
 *
 * Bounds, with their defaults: BACKFILL_PAGE (50) events asked per request,
 * never more than the peer's own cap of 100; BACKFILL_MAX_SERVERS (5) servers
 * tried per page; BACKFILL_TIMEOUT_MS (10,000) per request; a gap that gave
 * nothing is not asked about again for BACKFILL_RETRY_MS (60,000). One
 * backfill per room at a time: concurrent callers share it.
 */
import type { HomeserverContext } from '../context.js';
import { MatrixError } from '../http/errors.js';
import { backwardExtremities } from '../rooms/history.js';
import type { RoomEngine } from '../rooms/types.js';
import type { RemoteServers } from './remote.js';

/** Events asked for per backfill request. @default 50 */
export const BACKFILL_PAGE = 50;
/** Servers asked per page before giving up. @default 5 */
export const BACKFILL_MAX_SERVERS = 5;
/** Time for one backfill or state request. @default 10000 */
export const BACKFILL_TIMEOUT_MS = 10_000;
/** After a backfill that brought nothing, the same gap is not asked about again for this long. @default 60000 */
export const BACKFILL_RETRY_MS = 60_000;
/** Most backward extremities named in one request (the peer accepts 100). @default 20 */
const MAX_V = 20;

const enc = encodeURIComponent;
const arrayOf = (value: unknown): unknown[] | undefined => (Array.isArray(value) ? value : undefined);

export class HistoryFetcher {
  private readonly inFlight = new Map<string, Promise<number>>();
  /** Rooms whose last backfill from this edge brought nothing: not asked again before `until`. */
  private readonly fruitless = new Map<string, { edge: string; until: number }>();

  constructor(
    private readonly ctx: HomeserverContext,
    private readonly remote: RemoteServers,
    private readonly rooms: Pick<RoomEngine, 'importHistory' | 'sharedRooms'>,
  ) {}

  /** Whether there is history before what this server holds of the room. */
  async hasGap(roomId: string): Promise<boolean> {
    return (await this.backwardExtremities(roomId)).length > 0;
  }

  /**
   * Fetches one page of older history of the room; returns how many events were stored (0: nothing older,
   * nobody to ask, or every answer unusable; the reasons are logged). Never throws for remote failures.
   */
  backfill(roomId: string, limit = BACKFILL_PAGE): Promise<number> {
    const running = this.inFlight.get(roomId);
    if (running) return running;
    const started = this.fill(roomId, Math.max(1, Math.min(limit, 100))).finally(() => this.inFlight.delete(roomId));
    this.inFlight.set(roomId, started);
    return started;
  }

  private backwardExtremities(roomId: string): Promise<string[]> {
    return this.ctx.storage.read((t) => backwardExtremities(t, roomId, MAX_V));
  }

  private async fill(roomId: string, limit: number): Promise<number> {
    if (!this.remote.online) return 0;
    const edge = await this.backwardExtremities(roomId);
    if (edge.length === 0) return 0;
    // A gap nobody will fill (history hidden from this server, or every peer away) is not asked about on
    // every page request: once per BACKFILL_RETRY_MS for the same edge.
    const edgeKey = edge.join(',');
    const last = this.fruitless.get(roomId);
    if (last && last.edge === edgeKey && this.ctx.clock.now() < last.until) return 0;
    const stored = await this.fillFrom(roomId, edge, limit);
    if (stored > 0) this.fruitless.delete(roomId);
    else {
      if (this.fruitless.size >= 1000) this.fruitless.clear();
      this.fruitless.set(roomId, { edge: edgeKey, until: this.ctx.clock.now() + BACKFILL_RETRY_MS });
    }
    return stored;
  }

  private async fillFrom(roomId: string, edge: string[], limit: number): Promise<number> {
    const room = (await this.rooms.sharedRooms()).find((r) => r.roomId === roomId);
    if (!room) return 0;
    const connected = this.remote.connected();
    const servers = [...room.servers.filter((s) => connected?.has(s) ?? true), ...room.servers.filter((s) => connected !== undefined && !connected.has(s))]
      .filter((s) => s !== this.ctx.serverName)
      .slice(0, BACKFILL_MAX_SERVERS);
    for (const server of servers) {
      try {
        const path = `/_matrix/federation/v1/backfill/${enc(roomId)}?${edge.map((id) => `v=${enc(id)}`).join('&')}&limit=${limit}`;
        const body = await this.remote.call(server, 'backfill the room', { method: 'GET', path }, BACKFILL_TIMEOUT_MS);
        const pdus = arrayOf(body.pdus);
        if (!pdus) throw new MatrixError(502, 'M_UNKNOWN', `${server} answered backfill without pdus`);
        if (pdus.length > limit + edge.length) throw new MatrixError(502, 'M_UNKNOWN', `${server} answered ${pdus.length} events for a backfill of ${limit}`);
        if (pdus.length === 0) continue;
        const outcome = await this.rooms.importHistory(roomId, pdus, server, async (eventId) => {
          const state = await this.remote.call(server, 'fetch the state at an event', { method: 'GET', path: `/_matrix/federation/v1/state/${enc(roomId)}?event_id=${enc(eventId)}` }, BACKFILL_TIMEOUT_MS);
          const statePdus = arrayOf(state.pdus);
          const authChain = arrayOf(state.auth_chain);
          if (!statePdus || !authChain) throw new Error(`${server} answered state without pdus or auth_chain`);
          return { pdus: statePdus, authChain };
        });
        const stored = outcome?.stored.length ?? 0;
        this.ctx.log.debug(`backfill of ${roomId} from ${server}: ${stored} stored, ${outcome?.rejected ?? 0} rejected, ${outcome?.dropped ?? 0} dropped`);
        if (stored > 0) return stored;
      } catch (error) {
        this.ctx.log.debug(`backfill of ${roomId} from ${server} failed: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return 0;
  }
}

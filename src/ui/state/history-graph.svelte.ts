/**
 * The history graph of one room: its newest events with their parents, from Hometab's unstable endpoint
 * `GET /_matrix/client/unstable/org.hometab/rooms/{roomId}/dag` (the client-server API never gives
 * prev_events), laid out in lanes by dag-layout.ts. The answer is checked field by field before use, and
 * reloaded (coalesced) while the room's timeline grows, so a merge appears when it happens.
 */
import type { MatrixClient, MatrixEvent, Method, Room } from 'matrix-js-sdk';
import { layoutDag, type DagEvent, type DagLayout } from './dag-layout.js';
import { ROOM_TIMELINE } from './events.js';

export const DAG_PREFIX = '/_matrix/client/unstable/org.hometab';
const RELOAD_DELAY_MS = 250;
const MAX_EVENTS = 500;

/** The endpoint's answer as far as it is well formed; anything malformed is left out. */
export function parseDagAnswer(answer: unknown): DagEvent[] {
  const list = (answer as { events?: unknown } | null)?.events;
  if (!Array.isArray(list)) throw new Error('the server sent no event graph');
  const out: DagEvent[] = [];
  for (const item of list.slice(0, MAX_EVENTS)) {
    if (typeof item !== 'object' || item === null) continue;
    const { event_id: eventId, prev_events: prev, sender, origin, type } = item as Record<string, unknown>;
    if (typeof eventId !== 'string' || typeof sender !== 'string' || typeof origin !== 'string' || typeof type !== 'string') continue;
    if (!Array.isArray(prev) || !prev.every((p): p is string => typeof p === 'string')) continue;
    out.push({ eventId, prevEvents: prev.slice(0, 20), sender, origin, type });
  }
  return out;
}

export class HistoryGraphState {
  layout = $state<DagLayout | undefined>(undefined);
  loading = $state(false);
  error = $state('');
  readonly roomId: string;
  readonly limit: number;
  readonly #client: MatrixClient;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #disposed = false;
  readonly #onTimeline = (_event: MatrixEvent, room: Room | undefined) => {
    if (room?.roomId !== this.roomId || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.load();
    }, RELOAD_DELAY_MS);
  };

  constructor(client: MatrixClient, roomId: string, limit = 100) {
    this.#client = client;
    this.roomId = roomId;
    this.limit = limit;
    client.on(ROOM_TIMELINE, this.#onTimeline);
  }

  async load(): Promise<void> {
    this.loading = true;
    try {
      const answer = await this.#client.http.authedRequest<unknown>('GET' as Method, `/rooms/${encodeURIComponent(this.roomId)}/dag`, { limit: String(this.limit) }, undefined, {
        prefix: DAG_PREFIX,
      });
      if (this.#disposed) return;
      this.layout = layoutDag(parseDagAnswer(answer));
      this.error = '';
    } catch (error) {
      if (!this.#disposed) this.error = error instanceof Error ? error.message : String(error);
    } finally {
      this.loading = false;
    }
  }

  /** A short name for a server (Hometab server names are 64 hex digits). */
  static shortName(server: string): string {
    return /^[0-9a-f]{64}$/.test(server) ? `${server.slice(0, 8)}…` : server;
  }

  dispose(): void {
    this.#disposed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#client.off(ROOM_TIMELINE, this.#onTimeline);
  }
}

/**
 * A discardable window on a room's history, for reading far back without the room keeping what was read:
 * a standalone EventTimelineSet of the room (not the room's own, so nothing the SDK keeps for the room
 * holds its events), anchored at one event by GET /context, paged with the client's paginateEventTimeline
 * (GET /messages, events through the client's event mapper, so encrypted ones decrypt as the room's do),
 * and trimmed at the end away from the reader so it never holds more than its owner asks. Trimming needs
 * the pagination token of the gap it cuts at: every page's edges are remembered (a page's `from` is the
 * gap after the newest event it returns backwards, its `end` the gap before the oldest), so cuts fall on
 * page edges and paging back over a cut returns exactly the events removed.
 * Dropping the window object drops its events (the room's RelationsContainer keeps relation events it saw,
 * as it does for the room's own timelines).
 */
import type { Direction, EventTimeline, EventTimelineSet, MatrixClient, MatrixEvent, Room } from 'matrix-js-sdk';

const BACKWARDS = 'b' as Direction;
const FORWARDS = 'f' as Direction;

export class HistoryWindow {
  readonly #client: MatrixClient;
  readonly #set: EventTimelineSet;
  readonly #timeline: EventTimeline;
  /** Event ID → the token of the gap just before it / just after it, where known (page edges). */
  readonly #gapBefore = new Map<string, string>();
  readonly #gapAfter = new Map<string, string>();

  private constructor(client: MatrixClient, set: EventTimelineSet, timeline: EventTimeline) {
    this.#client = client;
    this.#set = set;
    this.#timeline = timeline;
    this.#recordEdges();
  }

  /** A window holding `anchorId` (GET /context), from which it pages either way. */
  static async open(client: MatrixClient, room: Room, anchorId: string): Promise<HistoryWindow> {
    // The UI imports the SDK's types only (src/app loads it lazily): the class comes from the room's own set.
    const TimelineSet = room.getUnfilteredTimelineSet().constructor as new (room: Room, opts: { timelineSupport: boolean; pendingEvents: boolean }) => EventTimelineSet;
    const set = new TimelineSet(room, { timelineSupport: true, pendingEvents: false });
    const timeline = await client.getEventTimeline(set, anchorId);
    if (!timeline) throw new Error(`no timeline for ${anchorId}`);
    return new HistoryWindow(client, set, timeline);
  }

  /** Oldest first. */
  events(): readonly MatrixEvent[] {
    return this.#timeline.getEvents();
  }

  get size(): number {
    return this.#timeline.getEvents().length;
  }

  /** False once the room's beginning is in the window. */
  get canGoBack(): boolean {
    return this.#timeline.getPaginationToken(BACKWARDS) !== null && this.events()[0]?.getType() !== 'm.room.create';
  }

  /** Pages back (GET /messages); resolves with how many events were added. */
  async older(limit: number): Promise<number> {
    return this.#page(true, limit);
  }

  /** Pages forwards; resolves with how many events were added (0: the window has reached the room's newest). */
  async newer(limit: number): Promise<number> {
    return this.#page(false, limit);
  }

  async #page(backwards: boolean, limit: number): Promise<number> {
    const before = this.size;
    const edge = (backwards ? this.events()[0] : this.events().at(-1))?.getId();
    const from = this.#timeline.getPaginationToken(backwards ? BACKWARDS : FORWARDS);
    await this.#client.paginateEventTimeline(this.#timeline, { backwards, limit });
    // The page began at the gap beside the old edge: the fetched event on its other side shares it.
    const events = this.events();
    const at = events.findIndex((event) => event.getId() === edge);
    const neighbour = at >= 0 ? events[backwards ? at - 1 : at + 1]?.getId() : undefined;
    if (neighbour && from) (backwards ? this.#gapAfter : this.#gapBefore).set(neighbour, from);
    this.#recordEdges();
    return this.size - before;
  }

  // The window's two ends are page edges: their tokens are the timeline's own pagination tokens.
  #recordEdges(): void {
    const events = this.events();
    const back = this.#timeline.getPaginationToken(BACKWARDS);
    const forward = this.#timeline.getPaginationToken(FORWARDS);
    const first = events[0]?.getId();
    const last = events.at(-1)?.getId();
    if (first && back) this.#gapBefore.set(first, back);
    if (last && forward) this.#gapAfter.set(last, forward);
  }

  /**
   * Keeps at most `keep` events, cutting the newest off at a page edge; returns how many were removed.
   * The forward token becomes the gap after the newest kept event, so paging forwards brings them back.
   */
  trimNewest(keep: number): number {
    const events = this.events();
    for (let last = Math.min(keep, events.length) - 1; last >= 0 && last < events.length - 1; last--) {
      const token = this.#gapAfter.get(events[last]!.getId()!);
      if (token === undefined) continue;
      const removed = events.slice(last + 1).map((event) => event.getId()!);
      for (const id of removed.reverse()) this.#forget(id);
      this.#timeline.setPaginationToken(token, FORWARDS);
      return removed.length;
    }
    return 0;
  }

  /** Keeps at most `keep` events, cutting the oldest off at a page edge; returns how many were removed. */
  trimOldest(keep: number): number {
    const events = this.events();
    for (let first = Math.max(0, events.length - keep); first < events.length && first > 0; first++) {
      const token = this.#gapBefore.get(events[first]!.getId()!);
      if (token === undefined) continue;
      const removed = events.slice(0, first).map((event) => event.getId()!);
      for (const id of removed) this.#forget(id);
      this.#timeline.setPaginationToken(token, BACKWARDS);
      return removed.length;
    }
    return 0;
  }

  #forget(eventId: string): void {
    this.#set.removeEvent(eventId);
    this.#gapBefore.delete(eventId);
    this.#gapAfter.delete(eventId);
  }
}

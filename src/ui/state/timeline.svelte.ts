/**
 * One room's timeline as the "Timeline" log shows it: messages with edits, reactions, replies, deletions
 * and read receipts folded in (aggregate.ts), day separators, who is typing, back-pagination through the
 * client's scrollback, and the actions on messages: send (markdown), reply, edit, react / unreact, delete,
 * typing notifications and read receipts. An encrypted message whose key has not arrived is a row marked
 * `awaitingKey`, refreshed when the crypto decrypts it. Built per opened room; `dispose` when the room closes.
 *
 * What it holds stays bounded however far back the reader goes: the room's live timeline is paged back to
 * `bounds.live` events at most; further back is read through a HistoryWindow (history-window.ts) holding
 * `bounds.window` events at most, cut at the end away from the reader, and dropped once the reader is back
 * at the newest messages. While the window is open, new messages still arrive in the live timeline, and
 * paging the window forwards meets them there; edits, reactions and deletions that arrive meanwhile apply
 * to the window's messages too.
 */
import type { Direction, EventTimeline, MatrixClient, MatrixEvent, Room, RoomMember } from 'matrix-js-sdk';
import { CLIENT_EVENT, EVENT_DECRYPTED, MEMBER_NAME, MEMBER_TYPING, ROOM_LOCAL_ECHO, ROOM_RECEIPT, ROOM_REDACTION, ROOM_TIMELINE, ROOM_TIMELINE_RESET } from './events.js';
import { aggregate, replaces, withDaySeparators, type SourceEvent, type TimelineItem, type TimelineMessage } from './aggregate.js';
import { HistoryWindow } from './history-window.js';
import { asEdit, asReply, contentOf } from './compose.js';

export type { TimelineMessage, TimelineItem, ReactionSummary, ReplyPreview } from './aggregate.js';

/** How long a typing notification lasts unless renewed; renewed at most every TYPING_RENEW_MS while typing. */
const TYPING_TIMEOUT_MS = 6_000;
const TYPING_RENEW_MS = 4_000;
/** EventTimeline.BACKWARDS: the SDK's enum is not imported at run time (the UI imports its types only). */
const BACKWARDS = 'b' as Direction;

export interface TimelineBounds {
  /** Events the room's live timeline is paged back to at most; older ones are read through a history window. */
  live: number;
  /** Events shown from a history window at most (with the live ones it has met); its far end is cut beyond. */
  window: number;
}
export const DEFAULT_BOUNDS: TimelineBounds = { live: 200, window: 300 };

/**
 * The room's live timeline and those joined behind it, oldest first. A limited sync (a burst larger than
 * a sync's timeline) starts a new live timeline after a gap; paginating it back until it meets events the
 * previous one holds joins the two (the SDK's timelineSupport), and from then on the older events are in
 * the previous timeline, not the live one.
 */
function timelinesOf(room: Room): EventTimeline[] {
  const chain = [room.getLiveTimeline()];
  for (let older = chain[0]!.getNeighbouringTimeline(BACKWARDS); older && !chain.includes(older); older = older.getNeighbouringTimeline(BACKWARDS)) chain.unshift(older);
  return chain;
}

/** Events that change other rows rather than being rows: edits, reactions, deletions. */
function changesOthers(source: SourceEvent): boolean {
  return source.type === 'm.reaction' || source.type === 'm.room.redaction' || (source.type === 'm.room.message' && replaces(source) !== undefined);
}

function sourceOf(event: MatrixEvent): SourceEvent {
  const redacts = event.event.redacts ?? (event.getContent() as { redacts?: unknown }).redacts;
  const base = {
    id: event.getId() ?? event.getTxnId() ?? '',
    sender: event.getSender() ?? '',
    ts: event.getTs(),
    redacted: event.isRedacted(),
    pending: event.status !== null,
  };
  if (event.isEncrypted()) {
    // Not decrypted yet (or its key is missing: the SDK's failure stand-in is an m.bad.encrypted message), or
    // deleted before anyone could read it: a message row either way; what it was is unknown until decrypted.
    if (base.redacted) return { ...base, type: 'm.room.message', content: {} };
    if (event.getType() === 'm.room.encrypted' || event.isDecryptionFailure()) return { ...base, type: 'm.room.message', content: {}, awaitingKey: true, keyProblem: event.decryptionFailureReason ?? undefined };
  }
  return {
    ...base,
    type: event.getType(),
    content: base.redacted ? {} : (event.getOriginalContent() as Record<string, unknown>),
    redacts: typeof redacts === 'string' ? redacts : undefined,
  };
}

export class TimelineState {
  messages = $state<TimelineMessage[]>([]);
  /** Messages with a separator before each day's first. */
  readonly items: TimelineItem[] = $derived(withDaySeparators(this.messages));
  /** Display names of the other members typing now. */
  typing = $state<string[]>([]);
  /** False once the room's creation has been reached. */
  canLoadOlder = $state(true);
  loadingOlder = $state(false);
  /** True while a history window shows older messages that have not met the live timeline yet. */
  canLoadNewer = $state(false);
  loadingNewer = $state(false);
  /** Counts jumps back to the newest messages the view should follow (sending while reading history). */
  liveJumps = $state(0);
  /** The message the composer replies to, or edits. */
  replyingTo = $state<TimelineMessage | undefined>();
  editing = $state<TimelineMessage | undefined>();
  /** The composer's text (kept here so starting an edit can fill it). */
  draft = $state('');
  readonly roomId: string;

  readonly #client: MatrixClient;
  readonly #bounds: TimelineBounds;
  /** Open while the reader is further back than the live timeline goes. */
  #history: HistoryWindow | undefined;
  /** When the history window has met the live timeline: how many of the shown events are live ones. */
  #liveShown: number | undefined;
  #historyShown = 0;
  readonly #fetched = new Map<string, SourceEvent>();
  readonly #fetching = new Set<string>();
  #typingSentAt = 0;
  #receiptSentFor = '';
  #refreshQueued = false;
  readonly #onRoomEvent = (_event: unknown, room: Room | undefined) => {
    if (room?.roomId === this.roomId) this.#queueRefresh();
  };
  // Room.timelineReset passes the room first (a limited sync or a gap replaced the live timeline).
  readonly #onReset = (room: Room | undefined) => {
    if (room?.roomId === this.roomId) this.#queueRefresh();
  };
  readonly #onMember = (_event: unknown, member: RoomMember) => {
    if (member.roomId === this.roomId) this.#queueRefresh();
  };
  // Typing is read from the members; after a limited sync resets the timeline (a room joined through another
  // server starts after a gap) the SDK no longer re-emits the new members' typing changes, but the m.typing
  // event itself still reaches the client (without a room ID: any refreshes).
  readonly #onEphemeral = (event: MatrixEvent) => {
    if (event.getType() === 'm.typing') this.#queueRefresh();
  };
  // A message waiting for its key is replaced in place once the key arrives and the crypto decrypts it.
  readonly #onDecrypted = (event: MatrixEvent) => {
    if (event.getRoomId() === this.roomId) this.#queueRefresh();
  };

  constructor(client: MatrixClient, roomId: string, bounds: TimelineBounds = DEFAULT_BOUNDS) {
    this.#client = client;
    this.#bounds = bounds;
    this.roomId = roomId;
    client.on(ROOM_TIMELINE, this.#onRoomEvent);
    client.on(ROOM_LOCAL_ECHO, this.#onRoomEvent);
    client.on(ROOM_TIMELINE_RESET, this.#onReset as never);
    client.on(ROOM_REDACTION, this.#onRoomEvent as never);
    client.on(ROOM_RECEIPT, this.#onRoomEvent as never);
    client.on(MEMBER_TYPING, this.#onMember);
    client.on(CLIENT_EVENT, this.#onEphemeral);
    client.on(MEMBER_NAME, this.#onMember);
    client.on(EVENT_DECRYPTED, this.#onDecrypted);
    this.refresh();
  }

  get room(): Room | undefined {
    return this.#client.getRoom(this.roomId) ?? undefined;
  }

  get userId(): string {
    return this.#client.getUserId() ?? '';
  }

  /** Display name of a user in this room (the ID when unknown). */
  nameOf(userId: string): string {
    return this.room?.getMember(userId)?.name ?? userId;
  }

  /** The mxc:// URI of a member's avatar in this room, when they have set one. */
  avatarOf(userId: string): string | undefined {
    return this.room?.getMember(userId)?.getMxcAvatarUrl() || undefined;
  }

  // SDK events come in bursts (a sync batch, a send's echo and remote echo): fold once per burst.
  #queueRefresh(): void {
    if (this.#refreshQueued) return;
    this.#refreshQueued = true;
    queueMicrotask(() => {
      this.#refreshQueued = false;
      this.refresh();
    });
  }

  refresh(): void {
    const room = this.room;
    if (!room) return;
    const timelines = timelinesOf(room);
    const live = timelines.flatMap((timeline) => timeline.getEvents());
    const { shown, liveFrom } = this.#shownEvents(live);
    const events: SourceEvent[] = [];
    const seen = new Set<string>();
    for (const event of shown) {
      const source = sourceOf(event);
      if (seen.has(source.id)) continue;
      seen.add(source.id);
      events.push(source);
    }
    if (liveFrom === undefined) {
      // Reading history: what arrives meanwhile may still edit, react to or delete the messages shown.
      for (const event of live) {
        const source = sourceOf(event);
        if (changesOthers(source) && !seen.has(source.id)) events.push(source);
      }
    } else {
      for (const event of room.getPendingEvents?.() ?? []) {
        const source = sourceOf(event);
        if (!seen.has(source.id)) events.push(source);
      }
    }
    const receipts = new Map<string, string>();
    for (const member of room.getJoinedMembers()) {
      const upTo = room.getEventReadUpTo(member.userId, true);
      if (upTo) receipts.set(member.userId, upTo);
    }
    const messages = aggregate({ events, userId: this.userId, receipts, extra: this.#fetched, nameOf: (id) => this.nameOf(id) });
    for (const message of messages) if (message.replyTo && !message.replyTo.known) this.#fetchReplyTarget(message.replyTo.id);
    this.messages = messages;
    this.typing = room
      .getJoinedMembers()
      .filter((m) => m.typing && m.userId !== this.userId)
      .map((m) => m.name);
    // Decided afresh each time: after a limited sync the live timeline starts after a gap, so a beginning
    // reached before is no longer in it until pagination joins them again.
    const oldest = timelines[0]!;
    this.canLoadOlder = this.#history ? this.#history.canGoBack : oldest.getEvents()[0]?.getType() !== 'm.room.create' && oldest.getPaginationToken(BACKWARDS) !== null;
    this.canLoadNewer = this.#history !== undefined && liveFrom === undefined;
    // The message being edited or replied to follows its latest state (and goes when deleted).
    if (this.editing) this.editing = messages.find((m) => m.id === this.editing!.id && !m.deleted);
    if (this.replyingTo) this.replyingTo = messages.find((m) => m.id === this.replyingTo!.id && !m.deleted);
  }

  /**
   * The events to show, oldest first: the live timeline's, or the history window's followed by the live
   * timeline's from the first event they share on (`liveFrom`: its index in `live`; undefined while the
   * window has not met the live timeline).
   */
  #shownEvents(live: readonly MatrixEvent[]): { shown: readonly MatrixEvent[]; liveFrom: number | undefined } {
    const history = this.#history;
    this.#liveShown = undefined;
    if (!history) return { shown: live, liveFrom: 0 };
    const liveIndex = new Map<string, number>();
    live.forEach((event, i) => liveIndex.set(event.getId() ?? '', i));
    const shown: MatrixEvent[] = [];
    for (const event of history.events()) {
      const at = liveIndex.get(event.getId() ?? '');
      if (at !== undefined) {
        this.#historyShown = shown.length;
        this.#liveShown = live.length - at;
        for (let i = at; i < live.length; i++) shown.push(live[i]!);
        return { shown, liveFrom: at };
      }
      shown.push(event);
    }
    this.#historyShown = shown.length;
    return { shown, liveFrom: undefined };
  }

  /** Events shown by the last refresh while a history window is open: its own and the live ones it has met. */
  get #shownCount(): number {
    return this.#historyShown + (this.#liveShown ?? 0);
  }

  #fetchReplyTarget(eventId: string): void {
    if (this.#fetched.has(eventId) || this.#fetching.has(eventId)) return;
    this.#fetching.add(eventId);
    this.#client
      .fetchRoomEvent(this.roomId, eventId)
      .then((raw) => {
        const content = raw.content && typeof raw.content === 'object' ? (raw.content as Record<string, unknown>) : {};
        const redacted = raw.unsigned !== undefined && typeof raw.unsigned === 'object' && raw.unsigned !== null && 'redacted_because' in raw.unsigned;
        this.#fetched.set(eventId, {
          id: eventId,
          type: typeof raw.type === 'string' ? raw.type : '',
          sender: typeof raw.sender === 'string' ? raw.sender : '',
          content,
          ts: typeof raw.origin_server_ts === 'number' ? raw.origin_server_ts : 0,
          redacted,
          pending: false,
        });
        this.#queueRefresh();
      })
      .catch(() => {})
      .finally(() => this.#fetching.delete(eventId));
  }

  /** How many messages now come before the one that came first (what a load added at the top). */
  #addedBefore(firstId: string | undefined): number {
    if (firstId === undefined) return this.messages.length;
    return Math.max(0, this.messages.findIndex((m) => m.id === firstId));
  }

  /**
   * Fetches older events (GET /messages backwards): into the live timeline up to `bounds.live` events,
   * then through a history window opened at the live timeline's oldest event, whose newest events are cut
   * once more than `bounds.window` would be shown. Resolves with how many messages were added at the top.
   */
  async loadOlder(limit = 30): Promise<number> {
    const room = this.room;
    if (!room || this.loadingOlder || !this.canLoadOlder) return 0;
    this.loadingOlder = true;
    const firstId = this.messages[0]?.id;
    try {
      const timelines = timelinesOf(room);
      if (!this.#history) {
        const live = timelines.flatMap((timeline) => timeline.getEvents());
        const anchor = live.find((event) => event.getId()?.startsWith('$'));
        // A client made without timelineSupport cannot hold a timeline of its own: it pages the live one.
        if (live.length < this.#bounds.live || !anchor || !this.#client.timelineSupport) {
          await this.#client.paginateEventTimeline(timelines[0]!, { backwards: true, limit });
          this.refresh();
          return this.#addedBefore(firstId);
        }
        this.#history = await HistoryWindow.open(this.#client, room, anchor.getId()!);
      }
      const history = this.#history;
      await history.older(limit);
      this.refresh();
      if (this.#shownCount > this.#bounds.window && history === this.#history) {
        // Cutting below the first event shared with the live timeline leaves the live events out too.
        history.trimNewest(this.#liveShown === undefined ? this.#bounds.window : Math.min(this.#bounds.window, this.#historyShown));
        this.refresh();
      }
    } finally {
      this.loadingOlder = false;
    }
    return this.#addedBefore(firstId);
  }

  /**
   * Pages the history window forwards (the reader is coming back down), cutting its oldest events beyond
   * `bounds.window`; once it meets the live timeline the live events follow it. Resolves with how many
   * events were fetched.
   */
  async loadNewer(limit = 30): Promise<number> {
    const history = this.#history;
    if (!history || this.loadingNewer || !this.canLoadNewer) return 0;
    this.loadingNewer = true;
    try {
      const added = await history.newer(limit);
      if (history !== this.#history) return added;
      this.refresh();
      if (this.canLoadNewer && added === 0) {
        // At the room's newest without meeting the live timeline (it restarted after a gap): show it instead.
        this.#history = undefined;
        this.refresh();
      } else if (this.#shownCount > this.#bounds.window) {
        history.trimOldest(Math.max(this.#bounds.window - (this.#liveShown ?? 0), limit * 2));
        this.refresh();
      }
      return added;
    } finally {
      this.loadingNewer = false;
    }
  }

  /** The reader is at the newest messages: a history window that has met the live timeline goes. */
  followLive(): void {
    if (!this.#history || this.canLoadNewer) return;
    this.#history = undefined;
    this.refresh();
  }

  /** Back to the newest messages at once, whatever is open (the view follows `liveJumps`). */
  jumpToLive(): void {
    if (!this.#history) return;
    this.#history = undefined;
    this.liveJumps++;
    this.refresh();
  }

  /** Events this state has the SDK hold for it beyond the room's own timelines (a history window's). */
  get historyEventCount(): number {
    return this.#history?.size ?? 0;
  }

  /** Sends the composer's text: an edit while editing, a reply while replying, else a new message. */
  async send(text: string): Promise<void> {
    const content = contentOf(text);
    if (!content) return;
    const editing = this.editing;
    const replyingTo = this.replyingTo;
    this.editing = undefined;
    this.replyingTo = undefined;
    this.jumpToLive();
    try {
      if (editing) await this.#client.sendMessage(this.roomId, asEdit(content, editing.id) as never);
      else if (replyingTo) await this.#client.sendMessage(this.roomId, asReply(content, replyingTo.id) as never);
      else await this.#client.sendMessage(this.roomId, content as never);
    } finally {
      // The typing notice stops once the message is on its way, not beside it: sent first, the stop would reach
      // the other side first and take a sync of its own ahead of the message (half again its delivery time).
      void this.setTyping(false);
    }
  }

  startReply(message: TimelineMessage): void {
    this.editing = undefined;
    this.replyingTo = message;
  }

  /** Starts editing `message` (own, not deleted), putting its text in the composer. */
  startEdit(message: TimelineMessage): boolean {
    if (message.sender !== this.userId || message.deleted) return false;
    this.replyingTo = undefined;
    this.editing = message;
    this.draft = message.body;
    return true;
  }

  /** The newest message this user sent that can still be edited (what Up in an empty composer edits). */
  lastOwnMessage(): TimelineMessage | undefined {
    return this.messages.findLast((m) => m.sender === this.userId && !m.deleted && !m.pending);
  }

  /** Leaves editing (emptying the composer) or replying. */
  cancel(): void {
    if (this.editing) this.draft = '';
    this.editing = undefined;
    this.replyingTo = undefined;
  }

  /** Adds this user's `key` reaction to the message, or takes it back (redacts it) when already given. */
  async toggleReaction(messageId: string, key: string): Promise<void> {
    const message = this.messages.find((m) => m.id === messageId);
    if (!message || message.deleted) return;
    const mine = message.reactions.find((r) => r.key === key)?.mine;
    if (mine) {
      if (mine.startsWith('$')) await this.#client.redactEvent(this.roomId, mine);
      return;
    }
    await this.#client.sendEvent(this.roomId, 'm.reaction' as never, { 'm.relates_to': { rel_type: 'm.annotation', event_id: messageId, key } } as never);
  }

  /** Deletes (redacts) a message. */
  async remove(messageId: string): Promise<void> {
    if (!messageId.startsWith('$')) return;
    await this.#client.redactEvent(this.roomId, messageId);
  }

  /**
   * Says whether this user is typing; renewals are throttled, a stop is sent at once. In an encrypted room,
   * typing also readies the room key (as Element does): a new Megolm session, or one shared with devices that
   * joined since, goes out to every member's device while the user writes, not when they press Send.
   */
  async setTyping(typing: boolean): Promise<void> {
    const now = Date.now();
    if (typing && now - this.#typingSentAt < TYPING_RENEW_MS) return;
    if (!typing && this.#typingSentAt === 0) return;
    this.#typingSentAt = typing ? now : 0;
    const room = this.room;
    if (typing && room?.hasEncryptionStateEvent()) this.#client.getCrypto()?.prepareToEncrypt(room);
    await this.#client.sendTyping(this.roomId, typing, TYPING_TIMEOUT_MS).catch(() => {});
  }

  /** Sends a read receipt up to `eventId` (default: the newest event) unless one is already there or later. */
  async markRead(eventId?: string): Promise<void> {
    const room = this.room;
    if (!room) return;
    const events = room.getLiveTimeline().getEvents();
    const index = eventId === undefined ? events.length - 1 : events.findIndex((e) => e.getId() === eventId);
    const target = events[index];
    if (!target || !target.getId()?.startsWith('$') || target.getId() === this.#receiptSentFor) return;
    const current = room.getEventReadUpTo(this.userId, true);
    if (current) {
      const currentIndex = events.findIndex((e) => e.getId() === current);
      if (currentIndex >= index) return;
    }
    this.#receiptSentFor = target.getId()!;
    await this.#client.sendReadReceipt(target).catch(() => {});
  }

  dispose(): void {
    void this.setTyping(false);
    this.#history = undefined;
    this.#client.off(ROOM_TIMELINE, this.#onRoomEvent);
    this.#client.off(ROOM_LOCAL_ECHO, this.#onRoomEvent);
    this.#client.off(ROOM_TIMELINE_RESET, this.#onReset as never);
    this.#client.off(ROOM_REDACTION, this.#onRoomEvent as never);
    this.#client.off(ROOM_RECEIPT, this.#onRoomEvent as never);
    this.#client.off(MEMBER_TYPING, this.#onMember);
    this.#client.off(CLIENT_EVENT, this.#onEphemeral);
    this.#client.off(MEMBER_NAME, this.#onMember);
    this.#client.off(EVENT_DECRYPTED, this.#onDecrypted);
  }
}

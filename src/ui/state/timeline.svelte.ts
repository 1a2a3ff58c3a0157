/**
 * One room's timeline as the "Timeline" log shows it: messages (sender, display name, body, time, whether
 * still being sent), back-pagination through the client's scrollback, sending, and the read receipt for
 * the newest message. Built per opened room; `dispose` when the room closes.
 */
import type { MatrixClient, MatrixEvent, Room } from 'matrix-js-sdk';
import { ROOM_LOCAL_ECHO, ROOM_TIMELINE, ROOM_TIMELINE_RESET } from './events.js';
import { mediaOf, type MediaContent } from './media.svelte.js';

export interface TimelineMessage {
  id: string;
  sender: string;
  senderName: string;
  body: string;
  ts: number;
  /** Sent by this client and not yet acknowledged by the server. */
  pending: boolean;
  /** The image or file of an m.image / m.file message. */
  media?: MediaContent;
}

function messageOf(room: Room, event: MatrixEvent): TimelineMessage | undefined {
  if (event.getType() !== 'm.room.message' || event.isRedacted()) return undefined;
  const content = event.getContent();
  if (typeof content.body !== 'string') return undefined;
  const sender = event.getSender() ?? '';
  return {
    id: event.getId() ?? event.getTxnId() ?? '',
    sender,
    senderName: room.getMember(sender)?.name ?? sender,
    body: content.body,
    ts: event.getTs(),
    pending: event.status !== null,
    media: mediaOf(content),
  };
}

export class TimelineState {
  messages = $state<TimelineMessage[]>([]);
  /** False once the room's creation has been reached. */
  canLoadOlder = $state(true);
  loadingOlder = $state(false);
  readonly roomId: string;

  readonly #client: MatrixClient;
  readonly #onTimeline = (_event: MatrixEvent, room: Room | undefined) => {
    if (room?.roomId === this.roomId) this.refresh();
  };

  constructor(client: MatrixClient, roomId: string) {
    this.#client = client;
    this.roomId = roomId;
    client.on(ROOM_TIMELINE, this.#onTimeline);
    client.on(ROOM_LOCAL_ECHO, this.#onTimeline);
    client.on(ROOM_TIMELINE_RESET, this.#onTimeline as never);
    this.refresh();
  }

  get room(): Room | undefined {
    return this.#client.getRoom(this.roomId) ?? undefined;
  }

  refresh(): void {
    const room = this.room;
    if (!room) return;
    const list: TimelineMessage[] = [];
    for (const event of room.getLiveTimeline().getEvents()) {
      const message = messageOf(room, event);
      if (message) list.push(message);
    }
    for (const event of room.getPendingEvents?.() ?? []) {
      const message = messageOf(room, event);
      if (message && !list.some((m) => m.id === message.id)) list.push(message);
    }
    this.messages = list;
    const first = room.getLiveTimeline().getEvents()[0];
    if (first?.getType() === 'm.room.create') this.canLoadOlder = false;
  }

  /** Fetches older events (GET /messages backwards); resolves with how many messages were added. */
  async loadOlder(limit = 30): Promise<number> {
    const room = this.room;
    if (!room || this.loadingOlder || !this.canLoadOlder) return 0;
    this.loadingOlder = true;
    const before = this.messages.length;
    try {
      await this.#client.scrollback(room, limit);
      const timeline = room.getLiveTimeline();
      if (timeline.getPaginationToken('b' as never) === null) this.canLoadOlder = false;
      this.refresh();
    } finally {
      this.loadingOlder = false;
    }
    return this.messages.length - before;
  }

  async send(body: string): Promise<void> {
    const text = body.replace(/\s+$/, '');
    if (!text.trim()) return;
    await this.#client.sendTextMessage(this.roomId, text);
  }

  /** Sends a read receipt for the newest message, which clears the room's unread count. */
  async markRead(): Promise<void> {
    const events = this.room?.getLiveTimeline().getEvents() ?? [];
    const last = events[events.length - 1];
    if (last && last.getId()?.startsWith('$')) await this.#client.sendReadReceipt(last).catch(() => {});
  }

  dispose(): void {
    this.#client.off(ROOM_TIMELINE, this.#onTimeline);
    this.#client.off(ROOM_LOCAL_ECHO, this.#onTimeline);
    this.#client.off(ROOM_TIMELINE_RESET, this.#onTimeline as never);
  }
}

/**
 * Which of this user's messages in a room are still queued: written here, and not yet taken by any other
 * server of the room. The app's connection object says, per event ID, which destinations still wait for
 * it; an event is queued while every other server joined to the room is among them (a room with no other
 * server yet counts its pending invitees). Re-read on every `delivery` change and on membership changes.
 */
import type { MatrixClient, MatrixEvent, Room } from 'matrix-js-sdk';
import type { ConnectionSource } from './host.js';
import { ROOM_MY_MEMBERSHIP, ROOM_TIMELINE } from './events.js';

function serverOf(userId: string): string {
  const colon = userId.indexOf(':');
  return colon === -1 ? '' : userId.slice(colon + 1);
}

export class DeliveryState {
  /** Bumped whenever the answer may have changed; read by `queued` so callers re-run. */
  #version = $state(0);
  readonly roomId: string;
  readonly #client: MatrixClient;
  readonly #source: ConnectionSource;
  readonly #bump = () => this.#version++;
  readonly #onTimeline = (event: MatrixEvent, room: Room | undefined) => {
    if (room?.roomId === this.roomId && event.getType() === 'm.room.member') this.#bump();
  };

  constructor(source: ConnectionSource, client: MatrixClient, roomId: string) {
    this.#source = source;
    this.#client = client;
    this.roomId = roomId;
    source.events.addEventListener('delivery', this.#bump);
    client.on(ROOM_TIMELINE, this.#onTimeline);
    client.on(ROOM_MY_MEMBERSHIP, this.#bump as never);
  }

  /** True while the event waits for every other server of the room. */
  queued(eventId: string): boolean {
    void this.#version;
    const pending = this.#source.pendingDestinations?.(eventId) ?? [];
    if (pending.length === 0) return false;
    const own = serverOf(this.#client.getUserId() ?? '');
    const room = this.#client.getRoom(this.roomId);
    const others = new Set((room?.getJoinedMembers() ?? []).map((m) => serverOf(m.userId)).filter((s) => s !== own));
    if (others.size === 0) return true;
    return [...others].every((server) => pending.includes(server));
  }

  dispose(): void {
    this.#source.events.removeEventListener('delivery', this.#bump);
    this.#client.off(ROOM_TIMELINE, this.#onTimeline);
    this.#client.off(ROOM_MY_MEMBERSHIP, this.#bump as never);
  }
}

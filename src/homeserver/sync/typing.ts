/**
 * Who is typing in which room. Typing notifications are ephemeral: kept in
 * memory only, each with an expiry, and versioned by a serial number that
 * /sync tokens carry so a long-poll wakes when someone starts or stops typing.
 * Every start, stop and expiry that changes a room's typing set bumps the
 * serial and records it as that room's last change; /sync sends `m.typing`
 * for the rooms changed after the serial in its `since` token.
 */

/** Longest typing timeout honoured; clients refresh typing well before this. */
const MAX_TYPING_TIMEOUT_MS = 120_000;

/** Called after a room's typing set changed. */
export type TypingListener = (roomId: string) => void;

interface RoomTyping {
  /** userId -> expiry timer. */
  users: Map<string, ReturnType<typeof setTimeout>>;
  /** Serial of the last change to this room's typing set. */
  serial: number;
}

export class TypingTracker {
  private readonly rooms = new Map<string, RoomTyping>();
  private readonly listeners = new Set<TypingListener>();
  private currentSerial = 0;
  private closed = false;

  /** The serial of the latest change anywhere (0 before any). */
  get serial(): number {
    return this.currentSerial;
  }

  /** Marks `userId` as typing in the room for `timeoutMs`, or stops it. No-op if nothing changes. */
  set(roomId: string, userId: string, typing: boolean, timeoutMs = 30_000): void {
    if (this.closed) return;
    if (!typing) {
      this.stop(roomId, userId);
      return;
    }
    let room = this.rooms.get(roomId);
    if (!room) {
      room = { users: new Map(), serial: 0 };
      this.rooms.set(roomId, room);
    }
    const previous = room.users.get(userId);
    if (previous !== undefined) clearTimeout(previous);
    const timeout = Math.max(0, Math.min(timeoutMs, MAX_TYPING_TIMEOUT_MS));
    const timer = setTimeout(() => this.stop(roomId, userId), timeout);
    // Node: an expiry must not keep a process alive.
    (timer as { unref?: () => void }).unref?.();
    room.users.set(userId, timer);
    // Refreshing an existing typing notification changes nothing clients see.
    if (previous === undefined) this.changed(roomId, room);
  }

  /** Stops `userId` typing in the room (left the room, sent typing false, or expired). */
  stop(roomId: string, userId: string): void {
    const room = this.rooms.get(roomId);
    const timer = room?.users.get(userId);
    if (!room || timer === undefined) return;
    clearTimeout(timer);
    room.users.delete(userId);
    this.changed(roomId, room);
  }

  /** Users typing in the room now. */
  typingIn(roomId: string): string[] {
    const room = this.rooms.get(roomId);
    return room ? [...room.users.keys()] : [];
  }

  /** The serial of the room's last change (0 if it never changed). */
  roomSerial(roomId: string): number {
    return this.rooms.get(roomId)?.serial ?? 0;
  }

  /** Rooms whose typing set changed after `serial`. */
  changedSince(serial: number): string[] {
    const out: string[] = [];
    for (const [roomId, room] of this.rooms) if (room.serial > serial) out.push(roomId);
    return out;
  }

  /** Calls `listener` after every change; returns the unsubscribe function. */
  onChange(listener: TypingListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Clears every timer; later calls do nothing. */
  close(): void {
    this.closed = true;
    for (const room of this.rooms.values()) for (const timer of room.users.values()) clearTimeout(timer);
    this.rooms.clear();
    this.listeners.clear();
  }

  private changed(roomId: string, room: RoomTyping): void {
    room.serial = ++this.currentSerial;
    // Keep the room entry: its serial tells later syncs that it changed. Entries are tiny.
    for (const listener of [...this.listeners]) {
      try {
        listener(roomId);
      } catch {
        // A failing listener must not stop typing from being tracked.
      }
    }
  }
}

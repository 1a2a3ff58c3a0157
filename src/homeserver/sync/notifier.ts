/**
 * What /sync long-polls wait on, and what /sync may skip. It listens to the
 * storage's commit notices and to typing changes, and:
 *
 * - wakes a waiting /sync when a change concerns it (an event or receipt in
 *   one of its rooms, its own memberships, account data, to-device inbox,
 *   any device list change, typing in its rooms); a woken /sync recomputes
 *   and waits again if there was nothing for it after all, so wake-ups are
 *   hints and erring towards waking is safe;
 * - remembers, per room, user and device, the stream position of the last
 *   change of each kind it has seen. Every change after `knownFrom` (the
 *   position when it started listening) has been seen, so for a `since` at or
 *   after `knownFrom` an incremental /sync can skip the rooms and streams that
 *   did not change without reading storage at all.
 */
import type { Change, Commit, Storage } from '../../storage/types.js';
import type { TypingTracker } from './typing.js';

/** A /sync waiting for something new. */
export interface WaitRequest {
  userId: string;
  deviceId: string;
  /** Rooms whose events, receipts and typing concern the waiter (joined and invited). */
  rooms: ReadonlySet<string>;
  /** `seq` read just before the /sync's read transaction began: later commits may be unseen. */
  seq: number;
  /** Typing serial the /sync reported; later typing changes in `rooms` wake it. */
  typingSerial: number;
}

interface Waiter extends WaitRequest {
  wake(woken: boolean): void;
}

/** Commits kept for checking what happened between a /sync's read and its wait. */
const RECENT_COMMITS = 256;

const pair = (a: string, b: string) => `${a}\n${b}`;

export class SyncNotifier {
  /** Counts commit notices; a /sync compares it across its read to spot commits it may not have seen. */
  seq = 0;
  /** Every change after this stream position has been seen; undefined until known. */
  knownFrom: number | undefined;
  /** Position of the newest commit seen. */
  private lastPosition = 0;
  /** Resolves once `knownFrom` is set. */
  readonly ready: Promise<void>;

  private readonly lastEvent = new Map<string, number>();
  private readonly lastReceipt = new Map<string, number>();
  private readonly lastUserReceipt = new Map<string, number>();
  private readonly lastMembership = new Map<string, number>();
  private readonly lastAccountData = new Map<string, number>();
  private readonly lastToDevice = new Map<string, number>();
  private lastDeviceList = 0;
  private readonly recent: { seq: number; commit: Commit }[] = [];
  /** Seq of the newest commit dropped from `recent`. */
  private droppedSeq = 0;
  private readonly waiters = new Set<Waiter>();
  private readonly unsubscribe: Array<() => void> = [];
  private closed = false;

  constructor(
    storage: Storage,
    private readonly typing: TypingTracker,
  ) {
    this.unsubscribe.push(storage.subscribe((commit) => this.onCommit(commit)));
    this.unsubscribe.push(typing.onChange((roomId) => this.onTyping(roomId)));
    // Subscribed first, so every commit after the position read here is seen.
    this.ready = storage
      .read((txn) => txn.stream.current())
      .then(
        (position) => {
          this.knownFrom = position;
        },
        () => {
          // Unknown: /sync then reads everything instead of skipping.
        },
      );
  }

  /**
   * The stream position after the newest commit seen (undefined until
   * `knownFrom` is): the position of the storage as the answers below know it.
   */
  get position(): number | undefined {
    return this.knownFrom === undefined ? undefined : Math.max(this.knownFrom, this.lastPosition);
  }

  /** Whether the per-kind "last change" answers below are complete for `since`. */
  knows(since: number): boolean {
    return this.knownFrom !== undefined && since >= this.knownFrom;
  }

  roomEventsAfter(roomId: string, since: number): boolean {
    return (this.lastEvent.get(roomId) ?? 0) > since;
  }

  roomReceiptsAfter(roomId: string, since: number): boolean {
    return (this.lastReceipt.get(roomId) ?? 0) > since;
  }

  /** Whether the user's own receipts (or read markers) in the room changed after `since`. */
  userReceiptsAfter(userId: string, roomId: string, since: number): boolean {
    return (this.lastUserReceipt.get(pair(userId, roomId)) ?? 0) > since;
  }

  membershipChangedAfter(userId: string, roomId: string, since: number): boolean {
    return (this.lastMembership.get(pair(userId, roomId)) ?? 0) > since;
  }

  accountDataAfter(userId: string, since: number): boolean {
    return (this.lastAccountData.get(userId) ?? 0) > since;
  }

  toDeviceAfter(userId: string, deviceId: string, since: number): boolean {
    return (this.lastToDevice.get(pair(userId, deviceId)) ?? 0) > since;
  }

  /** Stream position of the device's newest to-device message seen (0 if none). */
  lastToDeviceOf(userId: string, deviceId: string): number {
    return this.lastToDevice.get(pair(userId, deviceId)) ?? 0;
  }

  deviceListsAfter(since: number): boolean {
    return this.lastDeviceList > since;
  }

  /**
   * Waits until something may concern the request, or `timeoutMs` passes.
   * Resolves true when woken, false on timeout, close or `signal` abort. Commits and typing
   * changes that happened after the request's read already count.
   */
  wait(request: WaitRequest, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed || timeoutMs <= 0 || signal?.aborted) return Promise.resolve(false);
    if (this.missedSomething(request)) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => waiter.wake(false), timeoutMs);
      // A client that went away (or stopped its SDK) should not hold a waiter until the timeout.
      const onAbort = () => waiter.wake(false);
      const waiter: Waiter = {
        ...request,
        wake: (woken) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          this.waiters.delete(waiter);
          resolve(woken);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** Ends every wait and stops listening. */
  close(): void {
    this.closed = true;
    for (const off of this.unsubscribe) off();
    for (const waiter of [...this.waiters]) waiter.wake(false);
  }

  private missedSomething(request: WaitRequest): boolean {
    if (this.droppedSeq > request.seq) return true;
    for (const { seq, commit } of this.recent) {
      if (seq <= request.seq) continue;
      if (commit.changes.some((change) => concerns(change, request))) return true;
    }
    for (const roomId of this.typing.changedSince(request.typingSerial)) if (request.rooms.has(roomId)) return true;
    return false;
  }

  private onCommit(commit: Commit): void {
    const seq = ++this.seq;
    this.lastPosition = Math.max(this.lastPosition, commit.position);
    this.recent.push({ seq, commit });
    if (this.recent.length > RECENT_COMMITS) this.droppedSeq = this.recent.shift()!.seq;
    for (const change of commit.changes) {
      switch (change.kind) {
        case 'event':
          raise(this.lastEvent, change.roomId, change.streamOrdering);
          break;
        case 'receipt':
          raise(this.lastReceipt, change.roomId, change.streamOrdering);
          raise(this.lastUserReceipt, pair(change.userId, change.roomId), change.streamOrdering);
          break;
        case 'membership':
          // The membership event's position is at most the commit's.
          raise(this.lastMembership, pair(change.userId, change.roomId), commit.position);
          if (change.membership !== 'join') this.typing.stop(change.roomId, change.userId);
          break;
        case 'accountData':
          raise(this.lastAccountData, change.userId, change.streamOrdering);
          break;
        case 'toDevice':
          raise(this.lastToDevice, pair(change.userId, change.deviceId), change.streamOrdering);
          break;
        case 'deviceList':
          this.lastDeviceList = Math.max(this.lastDeviceList, change.streamOrdering);
          break;
        case 'outbound':
          break;
      }
    }
    if (this.waiters.size === 0) return;
    for (const waiter of [...this.waiters]) {
      if (commit.changes.some((change) => concerns(change, waiter))) waiter.wake(true);
    }
  }

  private onTyping(roomId: string): void {
    for (const waiter of [...this.waiters]) if (waiter.rooms.has(roomId)) waiter.wake(true);
  }
}

function raise(map: Map<string, number>, key: string, position: number): void {
  if ((map.get(key) ?? 0) < position) map.set(key, position);
}

/** Whether a change may matter to a waiting /sync (see the module header: erring towards yes). */
function concerns(change: Change, request: WaitRequest): boolean {
  switch (change.kind) {
    case 'event':
    case 'receipt':
      return request.rooms.has(change.roomId);
    case 'membership':
      return change.userId === request.userId || request.rooms.has(change.roomId);
    case 'accountData':
      return change.userId === request.userId;
    case 'toDevice':
      return change.userId === request.userId && change.deviceId === request.deviceId;
    case 'deviceList':
      return true;
    case 'outbound':
      return false;
  }
}

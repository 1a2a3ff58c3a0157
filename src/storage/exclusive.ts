/**
 * What the memory and SQLite engines share to behave like IndexedDB: one
 * transaction at a time (their transactions span awaits on a single
 * connection or heap, so two must never interleave), and a transaction that
 * goes inactive once its callback has waited on anything but its own requests.
 * The second makes code that would lose writes in a browser fail in Node tests.
 */
import { StorageError } from './errors.js';

/** Runs tasks one after another, in call order. */
export class Exclusive {
  private tail: Promise<unknown> = Promise.resolve();

  /** Runs `task` after every task queued before it has settled. */
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Resolves once every queued task has settled. */
  async idle(): Promise<void> {
    await this.tail;
  }
}

/**
 * Tracks whether a transaction is still usable. Requests of these engines
 * complete within the same macrotask, so a transaction whose callback reaches a
 * later macrotask has awaited something foreign; IndexedDB would have
 * committed it by then, so from that point on every request fails here too.
 */
export class ActivityWindow {
  private state: 'active' | 'inactive' | 'finished' = 'active';
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor() {
    this.timer = setTimeout(() => {
      if (this.state === 'active') this.state = 'inactive';
    }, 0);
  }

  /** Throws unless the transaction may still issue requests. */
  check(): void {
    if (this.state === 'inactive') {
      throw new StorageError('TXN_INACTIVE', 'transaction used after awaiting something other than its own requests');
    }
    if (this.state === 'finished') throw new StorageError('TXN_INACTIVE', 'transaction used after it finished');
  }

  /** Marks the transaction finished (committed or rolled back). */
  finish(): void {
    this.state = 'finished';
    clearTimeout(this.timer);
  }
}

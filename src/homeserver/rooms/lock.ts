/**
 * One-at-a-time execution per key (a room ID): a promise chain per key, so
 * writes to one room are serialised (its DAG stays linear for local senders
 * and its in-memory cache never sees two writers) while different rooms run
 * concurrently. Entries are dropped once their chain is idle.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  /** Runs `fn` after every earlier `run` with the same key has settled. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key);
    const result = previous ? previous.then(fn, fn) : fn();
    // The tail never rejects, so a failed operation does not poison the chain.
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

/**
 * Storage over any engine: wraps each engine transaction in the typed stores,
 * and announces a write to observers (what it stored) and subscribers (what
 * changed) only after the engine reports it committed, in commit order (the
 * engine calls back before the next transaction starts). Backends provide an
 * Engine and call `createStorage`.
 */
import type { Engine } from './engine.js';
import { StorageError } from './errors.js';
import { Txn } from './txn.js';
import type { Commit, CommitListener, ReadTxn, Storage, WriteObserver, WriteSummary, WriteTxn } from './types.js';

class EngineStorage implements Storage {
  private readonly listeners = new Set<CommitListener>();
  private readonly observers = new Set<WriteObserver>();
  private closed = false;

  constructor(private readonly engine: Engine) {}

  async read<T>(fn: (txn: ReadTxn) => Promise<T>): Promise<T> {
    this.assertOpen();
    return this.engine.transaction('readonly', (t) => fn(Txn.over(t)));
  }

  async write<T>(fn: (txn: WriteTxn) => Promise<T>): Promise<T> {
    this.assertOpen();
    let commit: Commit | undefined;
    let written: WriteSummary | undefined;
    return this.engine.transaction(
      'readwrite',
      async (t) => {
        const txn = Txn.over(t);
        const result = await fn(txn);
        await txn.context.finish();
        const { changes } = txn.context;
        // Read before the commit, while the transaction is still live.
        if (changes.length > 0) commit = { position: await txn.context.streamPosition(), changes };
        written = txn.context.written;
        return result;
      },
      () => {
        if (written) this.tellObservers(written);
        if (commit) this.emit(commit);
      },
    );
  }

  subscribe(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  observe(listener: WriteObserver): () => void {
    this.observers.add(listener);
    return () => this.observers.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.observers.clear();
    await this.engine.close();
  }

  private emit(commit: Commit): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(commit);
      } catch (error) {
        // The write has committed; a failing listener must not turn it into a rejection.
        console.error('storage commit listener failed', error);
      }
    }
  }

  private tellObservers(summary: WriteSummary): void {
    for (const observer of [...this.observers]) {
      try {
        observer(summary);
      } catch (error) {
        console.error('storage write observer failed', error);
      }
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageError('CLOSED', 'storage is closed');
  }
}

/** The Storage interface over an engine. */
export function createStorage(engine: Engine): Storage {
  return new EngineStorage(engine);
}

/**
 * What every store of one transaction shares: the engine transaction, the
 * changes to announce once it commits, and the stream and ID counters (kept in
 * the counters table, so they commit or roll back with everything else).
 */
import type { EngineTxn, KeyRange } from '../engine.js';
import { StorageError } from '../errors.js';
import type { Key, KeyPart } from '../keys.js';
import { T } from '../schema.js';
import type { Change, EventRecord, MembershipRecord, StreamWindow, WriteSummary } from '../types.js';

const STREAM = 'stream';

/** A WriteSummary being filled. */
interface Written extends WriteSummary {
  events: EventRecord[];
  memberships: MembershipRecord[];
  revokedTokenHashes: string[];
  keyDevices: { userId: string; deviceId: string }[];
}

export class TxnContext {
  readonly changes: Change[] = [];
  /** What Storage.observe reports after the commit; undefined until something is noted. */
  written: Written | undefined;
  /** The stream position as of this transaction, once read. */
  private position: number | undefined;
  private positionLoad: Promise<number> | undefined;
  /** A position was handed out since the counter row was last written. */
  private positionTaken = false;

  constructor(readonly t: EngineTxn) {}

  /** Queues a change for the commit notice. */
  note(change: Change): void {
    this.changes.push(change);
  }

  /** Notes a stored event record for Storage.observe. */
  noteEvent(record: EventRecord): void {
    this.summary().events.push(record);
  }

  /** Notes a stored membership record for Storage.observe. */
  noteMembership(record: MembershipRecord): void {
    this.summary().memberships.push(record);
  }

  /** Notes a revoked access token, by its hash, for Storage.observe. */
  noteRevokedToken(tokenHash: string): void {
    this.summary().revokedTokenHashes.push(tokenHash);
  }

  /** Notes a change to a device's one-time or fallback keys for Storage.observe. */
  noteKeys(userId: string, deviceId: string): void {
    this.summary().keyDevices.push({ userId, deviceId });
  }

  private summary(): Written {
    return (this.written ??= { events: [], memberships: [], revokedTokenHashes: [], keyDevices: [] });
  }

  /** Throws READ_ONLY in read transactions, before any request is made. */
  assertWritable(): void {
    if (this.t.mode !== 'readwrite') throw new StorageError('READ_ONLY', 'write in a read-only transaction');
  }

  /** The latest stream position handed out. */
  async streamPosition(): Promise<number> {
    const loaded = await (this.positionLoad ??= this.counterValue(STREAM));
    if (this.position === undefined) this.position = loaded;
    return this.position;
  }

  /**
   * Hands out the next stream position. Positions are taken synchronously after the first read, so writes
   * issued together in one transaction (a received batch) get distinct positions in call order. The counter
   * row is written once, by `finish` at the end of the transaction, not once per position: a batch of 1,000
   * events would otherwise put the same row 1,000 times.
   */
  async nextStreamPosition(): Promise<number> {
    this.assertWritable();
    await this.streamPosition();
    this.positionTaken = true;
    return ++this.position!;
  }

  /** Writes what is held until the end of a write transaction (the stream counter); the storage calls it before the commit. */
  async finish(): Promise<void> {
    if (!this.positionTaken) return;
    this.positionTaken = false;
    await this.t.put(T.counters, { name: STREAM, value: this.position! });
  }

  /** Hands out the next value of a named counter (state group IDs, filter IDs, outbound seq). */
  async nextId(name: 'state_group' | 'filter' | 'outbound'): Promise<number> {
    this.assertWritable();
    const next = (await this.counterValue(name)) + 1;
    await this.t.put(T.counters, { name, value: next });
    return next;
  }

  private async counterValue(name: string): Promise<number> {
    const row = await this.t.get(T.counters, [name]);
    return typeof row?.value === 'number' ? row.value : 0;
  }
}

/** Direction and bounds of a window over keys `[...prefix, ...position]`. */
export interface Window {
  dir: 'f' | 'b';
  from?: Key;
  to?: Key;
  limit?: number;
}

/**
 * Turns a window into a key range: forwards (from, to], backwards [to, from)
 * reversed, i.e. (to, from] descending. Unbounded ends use ±Infinity, which
 * sort before and after every number part.
 */
export function windowQuery(
  prefix: readonly KeyPart[],
  arity: number,
  window: Window,
): KeyRange & { reverse: boolean; limit?: number } {
  const low = (bound: Key | undefined): Key => [...prefix, ...(bound ?? Array<number>(arity).fill(-Infinity))];
  const high = (bound: Key | undefined): Key => [...prefix, ...(bound ?? Array<number>(arity).fill(Infinity))];
  if (window.dir === 'f') {
    return {
      lower: low(window.from),
      lowerOpen: window.from !== undefined,
      upper: high(window.to),
      reverse: false,
      limit: window.limit,
    };
  }
  return {
    lower: low(window.to),
    lowerOpen: window.to !== undefined,
    upper: high(window.from),
    reverse: true,
    limit: window.limit,
  };
}

/** A stream window with its positions as one-part keys. */
export function streamWindow(window: StreamWindow): Window {
  return {
    dir: window.dir,
    from: window.from === undefined ? undefined : [window.from],
    to: window.to === undefined ? undefined : [window.to],
    limit: window.limit,
  };
}

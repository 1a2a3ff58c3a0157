/**
 * Unread counts for /sync's `unread_notifications`: how many events after the
 * user's read receipt (m.read or m.read.private, unthreaded or for the main
 * timeline, whichever is latest) would notify them under the default push
 * rules, and how many of those highlight (mention them). The user's own
 * events count as read up to themselves, as clients treat them: only events
 * after both the receipt and the user's latest event count.
 *
 * The rules approximated: messages, encrypted events, stickers, call invites
 * and polls from others notify, except notices (m.notice) and edits
 * (m.replace); highlights are intentional mentions (`m.mentions.user_ids`,
 * `m.mentions.room`) or, for events without `m.mentions`, the user's display
 * name, localpart or "@room" in the body; room upgrades (tombstones) highlight.
 *
 * Cost: counts are cached per user and room, with the stream position they
 * were counted through; the next sync only counts the events after it (which
 * its timeline read usually has already), and a new receipt of the user's
 * starts the count over. Counting from scratch walks back from the newest
 * event to the receipt or the user's own event, in growing batches, capped.
 * A later redaction or display name change does not revise a cached count.
 */
import type { EventRecord } from '../../storage/types.js';
import { LruMap } from './lru.js';
import type { SyncNotifier } from './notifier.js';
import type { RoomReader } from './room-reader.js';

export interface UnreadCounts {
  notification_count: number;
  highlight_count: number;
}

/** Events of the room the caller already read: every event in (from, upTo], oldest first. */
export interface KnownEvents {
  events: readonly EventRecord[];
  from: number;
}

/** Counting stops here; clients show "99+" long before. */
const MAX_COUNT = 1000;
/** Events examined at most per room when counting from scratch. */
const MAX_SCAN = 3000;
/** Events read forwards at most to bring a cached count up to date; more and it is counted afresh. */
const MAX_CATCH_UP = 200;

const NOTIFYING_TYPES = new Set([
  'm.room.message',
  'm.room.encrypted',
  'm.sticker',
  'm.call.invite',
  'm.poll.start',
  'org.matrix.msc3381.poll.start',
]);

interface Entry {
  /** Stream position of the receipt the count starts after (0: none). */
  readUpTo: number;
  /** Position the receipt was looked up at; a receipt of the user's after it makes `readUpTo` stale. */
  receiptAsOf: number;
  /** Events up to here are counted. */
  through: number;
  counts: UnreadCounts;
}

export class UnreadCounter {
  private readonly entries = new LruMap<string, Entry>(8192);
  /**
   * Mention matchers with the stream position they were built at. A matcher
   * reads only the user's member event in the room, and every change of it
   * is a membership change the notifier sees.
   */
  private readonly matchers = new LruMap<string, { matcher: MentionMatcher; asOf: number }>(8192);

  constructor(private readonly notifier: SyncNotifier) {}

  /** The user's counts in the room as of stream position `upTo`. */
  async counts(reader: RoomReader, roomId: string, userId: string, upTo: number, known?: KnownEvents): Promise<UnreadCounts> {
    const key = `${userId}\n${roomId}`;
    let entry = this.entries.get(key);
    if (entry && !(this.notifier.knows(entry.receiptAsOf) && !this.notifier.userReceiptsAfter(userId, roomId, entry.receiptAsOf))) {
      entry = undefined;
    }
    if (entry && entry.through <= upTo) {
      const caughtUp = await this.catchUp(reader, roomId, userId, entry, upTo, known);
      if (caughtUp) {
        this.entries.set(key, caughtUp);
        return { ...caughtUp.counts };
      }
    }
    const readUpTo = entry && entry.through <= upTo ? entry.readUpTo : await readPosition(reader, roomId, userId);
    const counts = await countBack(reader, roomId, userId, upTo, readUpTo, () => this.matcher(reader, roomId, userId, upTo), known);
    this.entries.set(key, { readUpTo, receiptAsOf: upTo, through: upTo, counts });
    return { ...counts };
  }

  /** Adds the events after `entry.through` to a cached count; undefined if there are too many to read. */
  private async catchUp(reader: RoomReader, roomId: string, userId: string, entry: Entry, upTo: number, known?: KnownEvents): Promise<Entry | undefined> {
    let events: readonly EventRecord[];
    if (entry.through === upTo) events = [];
    else if (known && known.from <= entry.through) events = known.events.filter((e) => (e.streamOrdering ?? 0) > entry.through);
    else {
      const read = await reader.txn.timeline.range(roomId, { dir: 'f', from: entry.through, to: upTo, limit: MAX_CATCH_UP + 1 });
      if (read.length > MAX_CATCH_UP) return undefined;
      events = read;
    }
    const counts = { ...entry.counts };
    let matcher: MentionMatcher | undefined;
    for (const record of events) {
      if ((record.streamOrdering ?? 0) <= entry.readUpTo) continue;
      if (record.event.sender === userId) {
        counts.notification_count = 0;
        counts.highlight_count = 0;
        continue;
      }
      if (!notifies(record) || counts.notification_count >= MAX_COUNT) continue;
      counts.notification_count++;
      matcher ??= await this.matcher(reader, roomId, userId, upTo);
      if (highlights(record, matcher)) counts.highlight_count++;
    }
    return { ...entry, through: upTo, counts };
  }

  /** The user's mention matcher in the room as of `upTo`, built again only after their member event changed. */
  private async matcher(reader: RoomReader, roomId: string, userId: string, upTo: number): Promise<MentionMatcher> {
    const key = `${userId}\n${roomId}`;
    const held = this.matchers.get(key);
    if (held && held.asOf <= upTo && this.notifier.knows(held.asOf) && !this.notifier.membershipChangedAfter(userId, roomId, held.asOf)) {
      return held.matcher;
    }
    const matcher = await mentionMatcher(reader, roomId, userId);
    this.matchers.set(key, { matcher, asOf: upTo });
    return matcher;
  }
}

/** Stream position of the user's latest read receipt in the room (0 if none). */
async function readPosition(reader: RoomReader, roomId: string, userId: string): Promise<number> {
  const { txn } = reader;
  // Unthreaded receipts and the main timeline's threaded ones ("main", which clients send once a server supports threads).
  const receipts = await Promise.all([
    txn.receipts.get(roomId, 'm.read', userId),
    txn.receipts.get(roomId, 'm.read.private', userId),
    txn.receipts.get(roomId, 'm.read', userId, 'main'),
    txn.receipts.get(roomId, 'm.read.private', userId, 'main'),
  ]);
  const events = await reader.getEvents(receipts.flatMap((r) => (r ? [r.eventId] : [])));
  let position = 0;
  for (const record of events.values()) position = Math.max(position, record.streamOrdering ?? 0);
  return position;
}

/** Counts from scratch: newest first, stopping at the receipt or the user's own event. */
async function countBack(
  reader: RoomReader,
  roomId: string,
  userId: string,
  upTo: number,
  readUpTo: number,
  matcherOf: () => Promise<MentionMatcher>,
  known?: KnownEvents,
): Promise<UnreadCounts> {
  const counts: UnreadCounts = { notification_count: 0, highlight_count: 0 };
  let matcher: MentionMatcher | undefined;
  let from = upTo;
  let batch: readonly EventRecord[] = [];
  let batchSize = 8;
  let scanned = 0;
  if (known) {
    batch = [...known.events].reverse();
    from = known.from;
  }
  for (;;) {
    for (const record of batch) {
      if ((record.streamOrdering ?? 0) <= readUpTo || record.event.sender === userId) return counts;
      if (!notifies(record)) continue;
      counts.notification_count++;
      matcher ??= await matcherOf();
      if (highlights(record, matcher)) counts.highlight_count++;
      if (counts.notification_count >= MAX_COUNT) return counts;
    }
    scanned += batch.length;
    if (from <= readUpTo || scanned >= MAX_SCAN) return counts;
    // Growing batches: the user's own latest event is usually close.
    batch = await reader.txn.timeline.range(roomId, { dir: 'b', from, to: readUpTo, limit: batchSize });
    if (batch.length === 0) return counts;
    from = batch[batch.length - 1].streamOrdering! - 1;
    batchSize = Math.min(batchSize * 4, 512);
  }
}

function notifies(record: EventRecord): boolean {
  if (record.rejected !== undefined || record.softFailed || record.redactedBy) return false;
  const { type, content } = record.event;
  if (type === 'm.room.tombstone') return record.event.state_key === '';
  if (!NOTIFYING_TYPES.has(type)) return false;
  if (type === 'm.room.message') {
    if (content.msgtype === 'm.notice') return false;
    const relation = content['m.relates_to'] as { rel_type?: unknown } | undefined;
    if (relation && relation.rel_type === 'm.replace') return false;
  }
  return true;
}

interface MentionMatcher {
  userId: string;
  patterns: RegExp[];
}

function wordPattern(text: string): RegExp {
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|\\W)${escaped}(\\W|$)`, 'i');
}

async function mentionMatcher(reader: RoomReader, roomId: string, userId: string): Promise<MentionMatcher> {
  const localpart = userId.slice(1, userId.indexOf(':'));
  const patterns = [wordPattern(localpart), /(^|\W)@room(\W|$)/];
  const memberId = await reader.txn.currentState.get(roomId, 'm.room.member', userId);
  const member = memberId ? await reader.getEvent(memberId) : undefined;
  const displayname = member?.event.content.displayname;
  if (typeof displayname === 'string' && displayname.trim() !== '') patterns.push(wordPattern(displayname));
  return { userId, patterns };
}

function highlights(record: EventRecord, matcher: MentionMatcher): boolean {
  const { type, content } = record.event;
  if (type === 'm.room.tombstone') return true;
  const mentions = content['m.mentions'];
  if (mentions !== null && typeof mentions === 'object' && !Array.isArray(mentions)) {
    // Intentional mentions turn the legacy body rules off (MSC3952).
    const { user_ids: userIds, room } = mentions as { user_ids?: unknown; room?: unknown };
    return (Array.isArray(userIds) && userIds.includes(matcher.userId)) || room === true;
  }
  const body = content.body;
  return typeof body === 'string' && matcher.patterns.some((pattern) => pattern.test(body));
}

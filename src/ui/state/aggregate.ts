/**
 * Folds a room's raw events (in timeline order) into the rows the "Timeline" log shows: each message with
 * its latest valid edit applied (m.replace from the original sender), its reactions counted per key
 * (m.annotation, one per sender and key), its reply target previewed (m.in_reply_to), "Message deleted"
 * once redacted, and who has read up to it. Edits, reactions and redactions are not rows of their own; an
 * encrypted event whose key has not arrived is a row that says so (it may turn out to be an edit, but
 * until it is decrypted nobody can tell).
 * Pure: the state class feeds it SDK events converted to `SourceEvent`, tests feed it plain objects.
 * Content is hostile input: every field is type-checked before use.
 */
import { mediaOf, type MediaContent } from './media.svelte.js';

export interface SourceEvent {
  id: string;
  type: string;
  sender: string;
  /** The event's original content (not the SDK's edited view of it); empty once redacted. */
  content: Record<string, unknown>;
  ts: number;
  redacted: boolean;
  /** For m.room.redaction: the event it removes. */
  redacts?: string;
  /** Sent by this client and not yet acknowledged by the server. */
  pending: boolean;
  /** End-to-end encrypted and not decrypted (yet): its key has not arrived. Shown as a message row. */
  awaitingKey?: boolean;
  /** Why the crypto could not decrypt it so far (the SDK's DecryptionFailureCode), if it tried. */
  keyProblem?: string;
}

export interface ReactionSummary {
  key: string;
  count: number;
  /** Matrix IDs of the reacting users, in the order they reacted. */
  senders: string[];
  /** The event ID of this user's own reaction with this key, which redacting takes back. */
  mine?: string;
}

export interface ReplyPreview {
  id: string;
  /** False while the target is neither in the loaded timeline nor fetched. */
  known: boolean;
  sender?: string;
  body?: string;
  deleted?: boolean;
}

export interface TimelineMessage {
  id: string;
  sender: string;
  senderName: string;
  /** The plain-text body (edited if edited, reply fallback removed); '' when deleted. */
  body: string;
  /** `formatted_body` when the format is org.matrix.custom.html: untrusted, sanitised where it is shown. */
  html?: string;
  msgtype: string;
  ts: number;
  pending: boolean;
  edited: boolean;
  deleted: boolean;
  replyTo?: ReplyPreview;
  /** The image or file of an m.image / m.file message. */
  media?: MediaContent;
  reactions: ReactionSummary[];
  /** Users (other than the viewer) whose read receipt is at this message. */
  readBy: string[];
  /** Encrypted, and this device does not have its key yet (the row updates in place when it arrives). */
  awaitingKey: boolean;
  /** With `awaitingKey`: the crypto's reason, when it has tried (e.g. MEGOLM_UNKNOWN_INBOUND_SESSION_ID). */
  keyProblem?: string;
}

export interface AggregateInput {
  events: readonly SourceEvent[];
  /** The viewing user. */
  userId: string;
  /** Each user's read-up-to event. */
  receipts?: ReadonlyMap<string, string>;
  /** Events fetched on their own (reply targets outside the loaded timeline). */
  extra?: ReadonlyMap<string, SourceEvent>;
  nameOf?: (userId: string) => string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

function relationOf(content: Record<string, unknown>): Record<string, unknown> | undefined {
  const relation = content['m.relates_to'];
  return isRecord(relation) ? relation : undefined;
}

/** The replaced event's ID when `event` is an edit. */
export function replaces(event: SourceEvent): string | undefined {
  const relation = relationOf(event.content);
  return relation?.rel_type === 'm.replace' && typeof relation.event_id === 'string' ? relation.event_id : undefined;
}

/** The event replied to, if any. */
export function replyTargetOf(content: Record<string, unknown>): string | undefined {
  const reply = relationOf(content)?.['m.in_reply_to'];
  return isRecord(reply) && typeof reply.event_id === 'string' ? reply.event_id : undefined;
}

/** Removes a legacy reply fallback: leading "> " lines and the blank line after them. */
export function stripReplyFallback(body: string): string {
  const lines = body.split('\n');
  let i = 0;
  while (i < lines.length && lines[i]!.startsWith('> ')) i++;
  if (i === 0) return body;
  if (lines[i] === '') i++;
  return lines.slice(i).join('\n');
}

/** Removes a legacy <mx-reply> fallback from formatted_body. */
export function stripHtmlReplyFallback(html: string): string {
  return html.replace(/^\s*<mx-reply>[\s\S]*?<\/mx-reply>/i, '');
}

interface Shown {
  body: string;
  html?: string;
  msgtype: string;
  media?: MediaContent;
}

/** What `content` (an m.room.message's content or an edit's m.new_content) shows, if it is showable. */
function shownOf(content: Record<string, unknown>, isReply: boolean): Shown | undefined {
  if (typeof content.body !== 'string' || typeof content.msgtype !== 'string') return undefined;
  const body = isReply ? stripReplyFallback(content.body) : content.body;
  let html: string | undefined;
  if (content.format === 'org.matrix.custom.html' && typeof content.formatted_body === 'string') {
    html = isReply ? stripHtmlReplyFallback(content.formatted_body) : content.formatted_body;
  }
  return { body, html, msgtype: content.msgtype, media: mediaOf(content) };
}

export function aggregate(input: AggregateInput): TimelineMessage[] {
  const { events, userId } = input;
  const nameOf = input.nameOf ?? ((id: string) => id);
  const redactedIds = new Set<string>();
  for (const event of events) if (event.type === 'm.room.redaction' && event.redacts && !event.redacted) redactedIds.add(event.redacts);
  const isRedacted = (event: SourceEvent) => event.redacted || redactedIds.has(event.id);

  // Originals first, so edits and reactions can find them whichever order they arrive in.
  const originals = new Map<string, SourceEvent>();
  for (const event of events) {
    if (event.type !== 'm.room.message' || replaces(event)) continue;
    originals.set(event.id, event);
  }

  const latestEdit = new Map<string, SourceEvent>();
  const reactions = new Map<string, Map<string, ReactionSummary>>();
  for (const event of events) {
    if (isRedacted(event)) continue;
    const target = replaces(event);
    if (target && event.type === 'm.room.message') {
      const original = originals.get(target);
      // Only the original sender may edit, and only with new content that is itself showable.
      const next = event.content['m.new_content'];
      if (!original || original.sender !== event.sender || !isRecord(next) || !shownOf(next, false)) continue;
      const previous = latestEdit.get(target);
      if (!previous || event.ts >= previous.ts) latestEdit.set(target, event);
      continue;
    }
    if (event.type === 'm.reaction') {
      const relation = relationOf(event.content);
      if (relation?.rel_type !== 'm.annotation' || typeof relation.event_id !== 'string' || typeof relation.key !== 'string') continue;
      if (!relation.key || relation.key.length > 64) continue;
      let byKey = reactions.get(relation.event_id);
      if (!byKey) reactions.set(relation.event_id, (byKey = new Map()));
      let summary = byKey.get(relation.key);
      if (!summary) byKey.set(relation.key, (summary = { key: relation.key, count: 0, senders: [] }));
      if (summary.senders.includes(event.sender)) continue;
      summary.senders.push(event.sender);
      summary.count++;
      if (event.sender === userId) summary.mine = event.id;
    }
  }

  const showOf = (event: SourceEvent): (Shown & { edited: boolean }) | undefined => {
    const isReply = replyTargetOf(event.content) !== undefined;
    const edit = latestEdit.get(event.id);
    if (edit) {
      const shown = shownOf(edit.content['m.new_content'] as Record<string, unknown>, false);
      if (shown) return { ...shown, edited: true };
    }
    const shown = shownOf(event.content, isReply);
    return shown && { ...shown, edited: false };
  };

  const rows: TimelineMessage[] = [];
  const rowIndex = new Map<string, number>();
  const position = new Map<string, number>();
  events.forEach((event, i) => position.set(event.id, i));
  for (const event of originals.values()) {
    const deleted = isRedacted(event);
    const awaitingKey = !deleted && event.awaitingKey === true;
    const shown = deleted || awaitingKey ? undefined : showOf(event);
    if (!deleted && !awaitingKey && !shown) continue;
    const replyId = deleted ? undefined : replyTargetOf(event.content);
    let replyTo: ReplyPreview | undefined;
    if (replyId) {
      const target = originals.get(replyId) ?? input.extra?.get(replyId);
      if (!target) replyTo = { id: replyId, known: false };
      else if (isRedacted(target)) replyTo = { id: replyId, known: true, sender: target.sender, deleted: true };
      else replyTo = { id: replyId, known: true, sender: target.sender, body: showOf(target)?.body ?? '' };
    }
    rowIndex.set(event.id, rows.length);
    rows.push({
      id: event.id,
      sender: event.sender,
      senderName: nameOf(event.sender),
      body: shown?.body ?? '',
      html: shown?.html,
      msgtype: shown?.msgtype ?? 'm.text',
      media: deleted ? undefined : shown?.media,
      ts: event.ts,
      pending: event.pending,
      edited: shown?.edited ?? false,
      deleted,
      replyTo,
      reactions: deleted ? [] : [...(reactions.get(event.id)?.values() ?? [])],
      readBy: [],
      awaitingKey,
      keyProblem: awaitingKey ? event.keyProblem : undefined,
    });
  }

  // A receipt on an event that is not a row (a reaction, a state event) belongs to the row before it.
  for (const [reader, eventId] of input.receipts ?? []) {
    if (reader === userId) continue;
    let at = position.get(eventId);
    if (at === undefined) continue;
    for (; at >= 0; at--) {
      const index = rowIndex.get(events[at]!.id);
      if (index !== undefined) {
        rows[index]!.readBy.push(reader);
        break;
      }
    }
  }
  return rows;
}

/** A day separator or a message, as the timeline lists them. */
export type TimelineItem = { kind: 'day'; id: string; ts: number } | ({ kind: 'message' } & TimelineMessage);

/** Inserts a separator before the first message of each local calendar day. */
export function withDaySeparators(messages: readonly TimelineMessage[]): TimelineItem[] {
  const items: TimelineItem[] = [];
  let day = '';
  for (const message of messages) {
    const date = new Date(message.ts);
    const key = `${date.getFullYear()}-${date.getMonth() + 1}-${date.getDate()}`;
    if (key !== day) {
      day = key;
      items.push({ kind: 'day', id: `day:${key}`, ts: message.ts });
    }
    items.push({ kind: 'message', ...message });
  }
  return items;
}

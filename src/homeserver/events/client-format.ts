/**
 * How stored events are shown to clients: the "ClientEvent" format of the
 * client-server API (event_id, room_id, sender, type, content, state_key,
 * origin_server_ts, unsigned with age, transaction_id, redacted_because and
 * prev_content). Federation-only fields (hashes, signatures, auth_events,
 * prev_events, depth) are left out. Redacted events are shown redacted.
 */
import { redactEvent } from '../../core/index.js';
import type { EventRecord } from '../../storage/types.js';

export interface ClientEvent {
  event_id: string;
  room_id?: string;
  sender: string;
  type: string;
  content: Record<string, unknown>;
  state_key?: string;
  origin_server_ts: number;
  redacts?: string;
  unsigned?: Record<string, unknown>;
}

export interface ClientFormatOptions {
  now: number;
  roomVersion: string;
  /** The requesting device's transaction ID for this event, when it sent it. */
  transactionId?: string;
  /** The redaction event, when the event has been redacted. */
  redactedBecause?: ClientEvent;
  /** Leave out room_id (sync timelines nest events under their room). */
  omitRoomId?: boolean;
}

export function toClientEvent(record: EventRecord, options: ClientFormatOptions): ClientEvent {
  const source = options.redactedBecause ? (redactEvent(record.event, options.roomVersion) as typeof record.event) : record.event;
  const out: ClientEvent = {
    event_id: record.eventId,
    sender: source.sender,
    type: source.type,
    content: source.content ?? {},
    origin_server_ts: source.origin_server_ts,
  };
  if (!options.omitRoomId) out.room_id = record.roomId;
  if (typeof source.state_key === 'string') out.state_key = source.state_key;
  // v11+ keep `redacts` in content; clients (matrix-js-sdk) still read the top-level key.
  const redacts = source.redacts ?? (source.type === 'm.room.redaction' ? (source.content as { redacts?: unknown }).redacts : undefined);
  if (typeof redacts === 'string') out.redacts = redacts;
  const unsigned: Record<string, unknown> = {};
  const stored = record.event.unsigned ?? {};
  if ('prev_content' in stored) unsigned.prev_content = stored.prev_content;
  if ('replaces_state' in stored) unsigned.replaces_state = stored.replaces_state;
  if ('prev_sender' in stored) unsigned.prev_sender = stored.prev_sender;
  if ('invite_room_state' in stored) unsigned.invite_room_state = stored.invite_room_state;
  unsigned.age = Math.max(0, options.now - source.origin_server_ts);
  if (options.transactionId !== undefined) unsigned.transaction_id = options.transactionId;
  if (options.redactedBecause) unsigned.redacted_because = options.redactedBecause;
  out.unsigned = unsigned;
  return out;
}

/**
 * Read receipts and read markers (spec "Receipts", "Fully read markers"):
 * m.read and m.read.private receipts go to the receipts store (on the stream,
 * so /sync sends them as m.receipt); m.fully_read is the room account data
 * entry of that type. A receipt only ever moves forwards: one for an event
 * older than the user's current receipt of that type (and thread) is accepted
 * and ignored, as Synapse does. Every request is one storage write.
 */
import type { WriteTxn } from '../../storage/types.js';
import type { HomeserverContext } from '../context.js';
import { MatrixError, forbidden, notFound } from '../http/errors.js';
import { joinedServers } from '../federation/edus.js';

export const RECEIPT_TYPES = ['m.read', 'm.read.private', 'm.fully_read'] as const;
export type ReceiptType = (typeof RECEIPT_TYPES)[number];

export function isReceiptType(type: string): type is ReceiptType {
  return (RECEIPT_TYPES as readonly string[]).includes(type);
}

const invalidParam = (message: string) => new MatrixError(400, 'M_INVALID_PARAM', message);

/** One marker to set: a receipt (or the fully-read marker) at an event. */
export interface MarkerRequest {
  type: ReceiptType;
  eventId: string;
  /** For threaded receipts: "main" or the thread root's event ID. */
  threadId?: string;
}

/** Checks a receipt's thread_id (absent, or a non-empty string; not with m.fully_read). */
export function checkThreadId(type: ReceiptType, threadId: unknown): string | undefined {
  if (threadId === undefined) return undefined;
  if (typeof threadId !== 'string' || threadId === '') throw invalidParam('thread_id must be a non-empty string');
  if (type === 'm.fully_read') throw invalidParam('thread_id is not compatible with m.fully_read');
  return threadId;
}

/** Sets the markers for the user in one write; 403 unless joined, 404 for events not in the room. */
export async function setReadMarkers(ctx: HomeserverContext, userId: string, roomId: string, markers: MarkerRequest[]): Promise<void> {
  const ts = ctx.clock.now();
  await ctx.storage.write(async (txn) => {
    const membership = await txn.memberships.get(roomId, userId);
    if (membership?.membership !== 'join') throw forbidden(`User ${userId} is not in room ${roomId}`);
    const events = await txn.events.getMany(markers.map((m) => m.eventId));
    for (const marker of markers) {
      const event = events.get(marker.eventId);
      if (!event || event.roomId !== roomId) throw notFound(`Event ${marker.eventId} not found in room ${roomId}`);
    }
    const sent: MarkerRequest[] = [];
    for (const marker of markers) {
      const moved = await applyMarker(txn, userId, roomId, marker, events.get(marker.eventId)!.streamOrdering, ts);
      if (moved && marker.type === 'm.read') sent.push(marker);
    }
    // Public receipts go to the other servers in the room, queued in this same write (federation "Receipts").
    if (sent.length === 0) return;
    for (const server of await joinedServers(txn, roomId, ctx.serverName)) {
      for (const marker of sent) {
        const data: Record<string, unknown> = { ts };
        if (marker.threadId !== undefined) data.thread_id = marker.threadId;
        const content = { [roomId]: { 'm.read': { [userId]: { event_ids: [marker.eventId], data } } } };
        await txn.outbound.enqueue(server, { edu: { edu_type: 'm.receipt', content } } as never);
      }
    }
  });
}

/** Sets one marker; false when it would not move forwards (and nothing was written). */
async function applyMarker(txn: WriteTxn, userId: string, roomId: string, marker: MarkerRequest, stream: number | undefined, ts: number): Promise<boolean> {
  if (marker.type === 'm.fully_read') {
    const existing = await txn.accountData.get(userId, 'm.fully_read', roomId);
    const previousId = existing?.content.event_id;
    if (typeof previousId === 'string' && (await isNotBefore(txn, previousId, stream))) return false;
    await txn.accountData.put(userId, 'm.fully_read', { event_id: marker.eventId }, roomId);
    return true;
  }
  const existing = await txn.receipts.get(roomId, marker.type, userId, marker.threadId ?? '');
  if (existing && (existing.eventId === marker.eventId || (await isNotBefore(txn, existing.eventId, stream)))) return false;
  await txn.receipts.put({ roomId, receiptType: marker.type, userId, threadId: marker.threadId, eventId: marker.eventId, ts });
  return true;
}

/** Whether the stored marker's event is at or after the new one (so the marker would move backwards). */
async function isNotBefore(txn: WriteTxn, previousId: string, stream: number | undefined): Promise<boolean> {
  if (stream === undefined) return false;
  const previous = await txn.events.get(previousId);
  return previous?.streamOrdering !== undefined && previous.streamOrdering >= stream;
}

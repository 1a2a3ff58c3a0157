/**
 * Sending events into rooms (client-server API "Sending events to a room"
 * and "Redactions"): messages with transaction-ID idempotency, state events
 * (member events go through the membership path, as in Synapse), and
 * redactions. The room engine builds, authorises and stores each event.
 * Every send counts against the sender's rc_message limit, except member
 * events, which count as joins when they join oneself (as in Synapse).
 */
import type { EventRecord } from '../../../storage/types.js';
import { badJson, invalidParam } from '../../http/errors.js';
import { clientRoute, type AuthedContext, type RouteDefinition } from '../../http/router.js';
import { requireUserId } from '../../rooms/validate.js';
import type { HomeserverServices } from '../../services.js';
import { roomIdParam } from '../../http/params.js';
import { eventIdParam } from './common.js';

const MEMBERSHIPS = new Set(['invite', 'join', 'leave', 'ban', 'knock']);

export function sendRoutes({ ctx: hs, rooms, limits }: HomeserverServices): RouteDefinition[] {
  const sent = (record: EventRecord) => ({ event_id: record.eventId });

  /**
   * Counts a send against rc_message. A retry of a send that already happened (same transaction
   * ID) is let through when over the limit, as Synapse answers replays from its cache: it stores
   * nothing new, and the client that lost the first answer gets its event ID instead of waiting.
   */
  async function countSend(ctx: AuthedContext, txnId: string | undefined): Promise<void> {
    try {
      limits.take('message', ctx.requester.userId);
    } catch (error) {
      const { userId, deviceId } = ctx.requester;
      if (txnId !== undefined && (await hs.storage.read((t) => t.transactionIds.get(userId, deviceId, txnId)))) return;
      throw error;
    }
  }

  async function send(ctx: AuthedContext, txnId: string | undefined) {
    const roomId = roomIdParam(ctx.params.roomId);
    const content = await ctx.json();
    await countSend(ctx, txnId);
    const txn = txnId === undefined ? undefined : { deviceId: ctx.requester.deviceId, txnId };
    return sent(await rooms.sendEvent(roomId, ctx.requester.userId, { type: ctx.params.eventType!, content }, { txn }));
  }

  async function putState(ctx: AuthedContext, stateKey: string) {
    const roomId = roomIdParam(ctx.params.roomId);
    const type = ctx.params.eventType!;
    const content = await ctx.json();
    if (type === 'm.room.member') {
      // Member events change memberships: the same path as /invite, /join, ... (Synapse routes them alike).
      const target = requireUserId(stateKey, 'state_key');
      const membership = content.membership;
      if (typeof membership !== 'string') throw badJson('Invalid membership (must be a string)');
      if (!MEMBERSHIPS.has(membership)) throw invalidParam(`Invalid membership: ${membership}`);
      if (membership === 'join' && target === ctx.requester.userId) limits.take('joins', ctx.requester.userId);
      const record = await rooms.updateMembership(roomId, ctx.requester.userId, target, membership as 'join', { content });
      return sent(record);
    }
    await countSend(ctx, undefined);
    return sent(await rooms.sendEvent(roomId, ctx.requester.userId, { type, stateKey, content }));
  }

  async function redact(ctx: AuthedContext, txnId: string | undefined) {
    const roomId = roomIdParam(ctx.params.roomId);
    const target = eventIdParam(ctx.params.eventId);
    const content = await ctx.json();
    if (content.reason !== undefined && typeof content.reason !== 'string') throw badJson("'reason' must be a string");
    if (content.redacts !== undefined && content.redacts !== target) {
      throw invalidParam('Cannot provide a redacts value incoherent with the event_id of the URL parameter');
    }
    await countSend(ctx, txnId);
    const txn = txnId === undefined ? undefined : { deviceId: ctx.requester.deviceId, txnId };
    const draft = { type: 'm.room.redaction', content, redacts: target };
    return sent(await rooms.sendEvent(roomId, ctx.requester.userId, draft, { txn }));
  }

  return [
    // PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}
    clientRoute('PUT', '/rooms/{roomId}/send/{eventType}/{txnId}', 'required', (ctx) => send(ctx, ctx.params.txnId)),
    // POST /_matrix/client/v3/rooms/{roomId}/send/{eventType} (Synapse's form without a transaction ID)
    clientRoute('POST', '/rooms/{roomId}/send/{eventType}', 'required', (ctx) => send(ctx, undefined)),
    // PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}
    clientRoute('PUT', '/rooms/{roomId}/state/{eventType}/{stateKey}', 'required', (ctx) => putState(ctx, ctx.params.stateKey!)),
    // PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType} (empty state key)
    clientRoute('PUT', '/rooms/{roomId}/state/{eventType}', 'required', (ctx) => putState(ctx, '')),
    // PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}
    clientRoute('PUT', '/rooms/{roomId}/redact/{eventId}/{txnId}', 'required', (ctx) => redact(ctx, ctx.params.txnId)),
    // POST /_matrix/client/v3/rooms/{roomId}/redact/{eventId} (Synapse's form without a transaction ID)
    clientRoute('POST', '/rooms/{roomId}/redact/{eventId}', 'required', (ctx) => redact(ctx, undefined)),
  ];
}

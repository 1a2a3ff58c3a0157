/**
 * EDUs (server-server API "Typing notifications", "Receipts", "Send-to-device
 * messaging", "Device management", "Presence"): unsigned, so accepted ONLY
 * about users of the server at the other end of the authenticated link —
 * anything about another server's users is dropped with a logged reason.
 * Inbound: typing goes to the typing tracker (for rooms where the user is
 * joined), receipts to the receipts store, to-device messages into local
 * inboxes (a message resent under the same message_id is stored once),
 * device list and signing key updates go to the remote device list cache
 * (device-cache.ts) and mark the user's keys changed for local /sync,
 * presence goes to the presence tracker (in memory, bounded; outbound
 * presence is presence-out.ts's). Outbound typing is sent from here when a local user's typing changes
 * (the tracker is memory; the outbox write is the EDU's own); receipts and
 * to-device messages are queued by the write that stores them
 * (sync/receipts.ts, keys/to-device.ts).
 */
import { isValidUserId, serverNameOf, type JsonObject } from '../../core/index.js';
import type { HomeserverContext } from '../context.js';
import { getOwn } from '../own-keys.js';
import type { TypingTracker } from '../sync/typing.js';
import type { RemoteDeviceLists } from './device-cache.js';
import { MAX_STATUS_MSG_LENGTH, PRESENCE_STATES, type PresenceState, type PresenceTracker } from '../accounts/presence.js';

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
/** Most entries one EDU may touch (receipts' rooms × users, to-device targets). */
const MAX_EDU_ENTRIES = 1000;
/** To-device message IDs remembered per sender, so a transaction resent after a lost answer is not delivered twice. */
const SEEN_MESSAGE_IDS = 10_000;

export class EduHandler {
  /** Local users we last told other servers are typing, per room. */
  private readonly sentTyping = new Map<string, Set<string>>();
  private readonly unsubscribe: () => void;
  /** `sender message_id` of to-device EDUs already stored, oldest first. */
  private readonly seenMessageIds = new Set<string>();

  constructor(
    private readonly ctx: HomeserverContext,
    private readonly typing: TypingTracker,
    private readonly deviceLists: RemoteDeviceLists,
    private readonly presence?: PresenceTracker,
  ) {
    this.unsubscribe = typing.onChange((roomId) => void this.typingChanged(roomId));
  }

  close(): void {
    this.unsubscribe();
  }

  private isFrom(userId: unknown, origin: string): userId is string {
    return isValidUserId(userId) && serverNameOf(userId) === origin;
  }

  /** One EDU of a transaction; returns why it was dropped, if it was. */
  async receive(edu: unknown, origin: string): Promise<string | undefined> {
    if (!isObject(edu) || typeof edu.edu_type !== 'string' || !isObject(edu.content)) return 'an EDU needs edu_type and content';
    const content = edu.content;
    switch (edu.edu_type) {
      case 'm.typing':
        return this.receiveTyping(content, origin);
      case 'm.receipt':
        return this.receiveReceipts(content, origin);
      case 'm.direct_to_device':
        return this.receiveToDevice(content, origin);
      case 'm.device_list_update':
        if (!this.isFrom(content.user_id, origin)) return `device list update for ${String(content.user_id)}, not a user of ${origin}`;
        return this.ctx.storage.write(async (t) => {
          const refused = await this.deviceLists.applyDeviceUpdate(t, content);
          if (refused === undefined) await t.deviceLists.add(content.user_id as string);
          return refused;
        });
      case 'm.signing_key_update':
        if (!this.isFrom(content.user_id, origin)) return `signing key update for ${String(content.user_id)}, not a user of ${origin}`;
        return this.ctx.storage.write(async (t) => {
          const refused = await this.deviceLists.applySigningKeyUpdate(t, content);
          if (refused === undefined) await t.deviceLists.add(content.user_id as string);
          return refused;
        });
      case 'm.presence': {
        const push = Array.isArray(content.push) ? content.push.slice(0, MAX_EDU_ENTRIES) : [];
        const foreign = push.find((p) => !isObject(p) || !this.isFrom(p.user_id, origin));
        if (foreign) return `presence for a user not of ${origin}`;
        for (const p of push as Record<string, unknown>[]) {
          if (!PRESENCE_STATES.includes(p.presence as PresenceState)) continue;
          const statusMsg = typeof p.status_msg === 'string' && p.status_msg.length <= MAX_STATUS_MSG_LENGTH ? p.status_msg : undefined;
          const ago = typeof p.last_active_ago === 'number' && Number.isFinite(p.last_active_ago) ? p.last_active_ago : 0;
          this.presence?.setRemote(p.user_id as string, p.presence as PresenceState, statusMsg, ago);
        }
        return undefined;
      }
      default:
        return `unknown EDU type ${edu.edu_type}`;
    }
  }

  private async receiveTyping(content: Record<string, unknown>, origin: string): Promise<string | undefined> {
    const { room_id: roomId, user_id: userId, typing } = content;
    if (!this.isFrom(userId, origin)) return `typing of ${String(userId)}, not a user of ${origin}`;
    if (typeof roomId !== 'string' || typeof typing !== 'boolean') return 'typing needs room_id and typing';
    const membership = await this.ctx.storage.read((t) => t.memberships.get(roomId, userId));
    if (membership?.membership !== 'join') return `typing of ${userId}, who is not joined to ${roomId}`;
    this.typing.set(roomId, userId, typing, 30_000);
    return undefined;
  }

  private async receiveReceipts(content: Record<string, unknown>, origin: string): Promise<string | undefined> {
    const entries: { roomId: string; receiptType: string; userId: string; eventId: string; threadId?: string; ts: number }[] = [];
    for (const roomId of Object.keys(content)) {
      const byType = content[roomId];
      if (!isObject(byType)) continue;
      const read = getOwn(byType, 'm.read');
      if (!isObject(read)) continue;
      for (const userId of Object.keys(read)) {
        if (!this.isFrom(userId, origin)) return `receipt of ${userId}, not a user of ${origin}`;
        const receipt = read[userId];
        const ids = isObject(receipt) && Array.isArray(receipt.event_ids) ? receipt.event_ids : [];
        const data = isObject(receipt) && isObject(receipt.data) ? receipt.data : {};
        const eventId = ids.find((id): id is string => typeof id === 'string');
        if (eventId === undefined) continue;
        const threadId = typeof data.thread_id === 'string' ? data.thread_id : undefined;
        entries.push({ roomId, receiptType: 'm.read', userId, eventId, threadId, ts: typeof data.ts === 'number' ? data.ts : this.ctx.clock.now() });
        if (entries.length > MAX_EDU_ENTRIES) return 'too many receipts in one EDU';
      }
    }
    await this.ctx.storage.write(async (t) => {
      for (const entry of entries) {
        const membership = await t.memberships.get(entry.roomId, entry.userId);
        const event = await t.events.get(entry.eventId);
        if (membership?.membership !== 'join' || !event || event.roomId !== entry.roomId) continue;
        await t.receipts.put(entry);
      }
    });
    return undefined;
  }

  private async receiveToDevice(content: Record<string, unknown>, origin: string): Promise<string | undefined> {
    const { sender, type, messages } = content;
    if (!this.isFrom(sender, origin)) return `to-device message from ${String(sender)}, not a user of ${origin}`;
    if (typeof type !== 'string' || !isObject(messages)) return 'to-device needs type and messages';
    const messageId = typeof content.message_id === 'string' ? `${sender} ${content.message_id}` : undefined;
    if (messageId !== undefined && this.seenMessageIds.has(messageId)) return undefined;
    let count = 0;
    await this.ctx.storage.write(async (t) => {
      for (const userId of Object.keys(messages)) {
        if (!isValidUserId(userId) || serverNameOf(userId) !== this.ctx.serverName) continue;
        const byDevice = messages[userId];
        if (!isObject(byDevice)) continue;
        const devices = (await t.devices.forUser(userId)).map((d) => d.deviceId);
        for (const deviceId of Object.keys(byDevice)) {
          const body = byDevice[deviceId];
          if (!isObject(body)) continue;
          for (const target of deviceId === '*' ? devices : devices.includes(deviceId) ? [deviceId] : []) {
            if (++count > MAX_EDU_ENTRIES) return;
            await t.toDevice.add(userId, target, { sender, type, content: body as JsonObject });
            await t.toDevice.keepNewest(userId, target, this.ctx.config.maxToDevicePerDevice);
          }
        }
      }
    });
    if (messageId !== undefined) {
      this.seenMessageIds.add(messageId);
      if (this.seenMessageIds.size > SEEN_MESSAGE_IDS) this.seenMessageIds.delete(this.seenMessageIds.values().next().value!);
    }
    return count > MAX_EDU_ENTRIES ? `to-device EDU addresses more than ${MAX_EDU_ENTRIES} inboxes; the rest were dropped` : undefined;
  }

  /** A room's typing set changed: tell the other servers about local users who started or stopped. */
  private async typingChanged(roomId: string): Promise<void> {
    const local = new Set(this.typing.typingIn(roomId).filter((u) => serverNameOf(u) === this.ctx.serverName));
    const before = this.sentTyping.get(roomId) ?? new Set<string>();
    const changes: [string, boolean][] = [];
    for (const userId of local) if (!before.has(userId)) changes.push([userId, true]);
    for (const userId of before) if (!local.has(userId)) changes.push([userId, false]);
    if (changes.length === 0) return;
    if (local.size > 0) this.sentTyping.set(roomId, local);
    else this.sentTyping.delete(roomId);
    try {
      await this.ctx.storage.write(async (t) => {
        const servers = await joinedServers(t, roomId, this.ctx.serverName);
        for (const server of servers) {
          for (const [userId, typing] of changes) {
            await t.outbound.enqueue(server, { edu: { edu_type: 'm.typing', content: { room_id: roomId, user_id: userId, typing } } });
          }
        }
      });
    } catch (error) {
      this.ctx.log.warn(`typing in ${roomId} not queued for other servers`, error);
    }
  }
}

/** The other servers with joined members in a room, from the memberships table. */
export async function joinedServers(
  t: { memberships: { forRoom(roomId: string, membership?: 'join'): Promise<{ userId: string }[]> } },
  roomId: string,
  ownServer: string,
): Promise<string[]> {
  const servers = new Set<string>();
  for (const { userId } of await t.memberships.forRoom(roomId, 'join')) {
    const server = serverNameOf(userId);
    if (server !== ownServer) servers.add(server);
  }
  return [...servers];
}

/**
 * To-device messaging (spec: "Send-to-Device messaging"): PUT /sendToDevice
 * puts one message in the inbox of each addressed device of a local user
 * ('*' = every device the user has). Unknown users and devices are skipped,
 * as Synapse does; other servers' users wait for federation. The whole request
 * is one write, recorded under its transaction ID so a retry changes nothing.
 *
 * Bounded (limits/bounds.ts): users named, inboxes written once '*' is
 * expanded, bytes per message. Each inbox keeps at most
 * `maxToDevicePerDevice` messages; past it the oldest are dropped. Dropping
 * rather than refusing is what clients cope with: a 429 would stall the
 * sender's whole to-device queue (room keys for everyone else included) for
 * the sake of one device that may never sync again, while the device that comes
 * back after that long has lost old key requests and room keys it can ask for
 * again, and still gets the newest.
 */
import { isValidUserId, serverNameOf, type JsonObject, type JsonValue } from '../../core/index.js';
import type { HomeserverContext } from '../context.js';
import { badJson, invalidParam, missingParam, tooLarge } from '../http/errors.js';
import type { Requester } from '../http/router.js';
import { expectObject } from './json.js';
import { setOwn } from '../own-keys.js';
import { isJsonObject } from '../http/params.js';
import { BOUNDS, checkCount, checkMapSize } from '../limits/bounds.js';

export type ToDeviceMessages = Map<string, Map<string, JsonObject>>;

/** Checks { messages: { userId: { deviceId | '*': content } } }. */
export function parseSendToDevice(body: Record<string, unknown>): ToDeviceMessages {
  if (body.messages === undefined) throw missingParam('Missing "messages"');
  const messages = expectObject(body.messages, 'messages');
  checkMapSize('messages', messages, BOUNDS.toDeviceUsers);
  const out: ToDeviceMessages = new Map();
  let named = 0;
  for (const [userId, byDevice] of Object.entries(messages)) {
    if (!isValidUserId(userId)) throw invalidParam(`messages: ${JSON.stringify(userId)} is not a valid user ID`);
    const devices = new Map<string, JsonObject>();
    for (const [deviceId, content] of Object.entries(expectObject(byDevice, `messages.${userId}`))) {
      checkCount('messages (devices named)', ++named, BOUNDS.toDeviceTargets);
      if (!isJsonObject(content)) throw badJson(`messages.${userId}.${deviceId} must be an object`);
      // UTF-8 takes 1 to 3 bytes per UTF-16 unit: bytes are counted only when that range reaches the bound.
      const json = JSON.stringify(content);
      if (json.length > BOUNDS.toDeviceContentBytes / 3 && new TextEncoder().encode(json).byteLength > BOUNDS.toDeviceContentBytes) {
        throw tooLarge(`'messages.${userId}.${deviceId}' may be at most ${BOUNDS.toDeviceContentBytes} bytes of JSON`);
      }
      devices.set(deviceId, content as JsonObject);
    }
    out.set(userId, devices);
  }
  return out;
}

/** The transaction-ID namespace of sendToDevice, apart from room sends (Synapse scopes them per endpoint). */
function txnKey(eventType: string, txnId: string): string {
  return `m.sendToDevice\u0000${eventType}\u0000${txnId}`;
}

/** PUT /sendToDevice/{eventType}/{txnId}: delivers into inboxes; returns how many messages were stored. */
export async function sendToDevice(
  ctx: HomeserverContext,
  requester: Requester,
  eventType: string,
  txnId: string,
  messages: ToDeviceMessages,
): Promise<number> {
  const key = txnKey(eventType, txnId);
  return ctx.storage.write(async (txn) => {
    if (await txn.transactionIds.get(requester.userId, requester.deviceId, key)) return 0;
    let stored = 0;
    const touched = new Map<string, Set<string>>();
    // Messages for other servers' users go out as one m.direct_to_device EDU per server, queued in this write.
    const remote = new Map<string, Record<string, Record<string, JsonObject>>>();
    for (const [userId, byDevice] of messages) {
      const server = serverNameOf(userId);
      if (server !== ctx.serverName) {
        const forServer = remote.get(server) ?? {};
        setOwn(forServer, userId, Object.fromEntries(byDevice));
        remote.set(server, forServer);
        continue;
      }
      const devices = (await txn.devices.forUser(userId)).map((d) => d.deviceId);
      if (devices.length === 0) continue;
      const known = new Set(devices);
      for (const [deviceId, content] of byDevice) {
        const targets = deviceId === '*' ? devices : known.has(deviceId) ? [deviceId] : [];
        // '*' fans out to every device of the user: the bound is on inboxes written, checked before each write.
        checkCount('messages (inboxes after expanding *)', stored + targets.length, BOUNDS.toDeviceTargets);
        for (const target of targets) {
          await txn.toDevice.add(userId, target, { sender: requester.userId, type: eventType, content });
          stored++;
        }
        if (targets.length > 0) {
          const set = touched.get(userId) ?? new Set<string>();
          for (const target of targets) set.add(target);
          touched.set(userId, set);
        }
      }
    }
    for (const [userId, devices] of touched) {
      for (const deviceId of devices) {
        const dropped = await txn.toDevice.keepNewest(userId, deviceId, ctx.config.maxToDevicePerDevice);
        if (dropped > 0) ctx.log.debug(`to-device inbox of ${userId} ${deviceId} full: dropped its ${dropped} oldest`);
      }
    }
    for (const [server, forServer] of remote) {
      const content = { sender: requester.userId, type: eventType, message_id: `${requester.deviceId}:${txnId}`, messages: forServer };
      await txn.outbound.enqueue(server, { edu: { edu_type: 'm.direct_to_device', content } } as never);
    }
    await txn.transactionIds.put({ userId: requester.userId, deviceId: requester.deviceId, txnId: key, response: {} as JsonValue });
    return stored;
  });
}

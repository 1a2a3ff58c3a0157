/**
 * To-device messaging (spec: "Send-to-Device messaging"): PUT /sendToDevice
 * puts one message in the inbox of each addressed device of a local user
 * ('*' = every device the user has). Unknown users and devices are skipped,
 * as Synapse does; other servers' users wait for federation. The whole request
 * is one write, recorded under its transaction ID so a retry changes nothing.
 */
import { isValidUserId, serverNameOf, type JsonObject, type JsonValue } from '../../core/index.js';
import type { HomeserverContext } from '../context.js';
import { badJson, invalidParam, missingParam } from '../http/errors.js';
import type { Requester } from '../http/router.js';
import { expectObject } from './json.js';
import { isJsonObject } from '../http/params.js';

export type ToDeviceMessages = Map<string, Map<string, JsonObject>>;

/** Checks { messages: { userId: { deviceId | '*': content } } }. */
export function parseSendToDevice(body: Record<string, unknown>): ToDeviceMessages {
  if (body.messages === undefined) throw missingParam('Missing "messages"');
  const messages = expectObject(body.messages, 'messages');
  const out: ToDeviceMessages = new Map();
  for (const [userId, byDevice] of Object.entries(messages)) {
    if (!isValidUserId(userId)) throw invalidParam(`messages: ${JSON.stringify(userId)} is not a valid user ID`);
    const devices = new Map<string, JsonObject>();
    for (const [deviceId, content] of Object.entries(expectObject(byDevice, `messages.${userId}`))) {
      if (!isJsonObject(content)) throw badJson(`messages.${userId}.${deviceId} must be an object`);
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
    for (const [userId, byDevice] of messages) {
      if (serverNameOf(userId) !== ctx.serverName) continue; // no federation yet
      const devices = (await txn.devices.forUser(userId)).map((d) => d.deviceId);
      if (devices.length === 0) continue;
      const known = new Set(devices);
      for (const [deviceId, content] of byDevice) {
        const targets = deviceId === '*' ? devices : known.has(deviceId) ? [deviceId] : [];
        for (const target of targets) {
          await txn.toDevice.add(userId, target, { sender: requester.userId, type: eventType, content });
          stored++;
        }
      }
    }
    await txn.transactionIds.put({ userId: requester.userId, deviceId: requester.deviceId, txnId: key, response: {} as JsonValue });
    return stored;
  });
}

/**
 * Test-only page entry of the app benchmark, served from the same origin as the built app so that it
 * writes into the very IndexedDB database a profile of the app opens: it boots the profile's peer (no
 * network: a BroadcastChannel nobody else listens on), registers the local user and stores its session where src/app/boot.ts looks for it (so the
 * app starts as that user, with no onboarding), creates a room and writes `count` messages into it. The
 * first is sent through the client-server API; the rest are the same kind of event built here in batches
 * (prev_events the previous message, auth_events those the server chose for the first, depth + 1), signed
 * with the profile's own key and handed to the homeserver's receive path (`replication.receivePdus`, the
 * path a peer's events take: shape, signature and auth checks, one storage write per batch). That is real
 * signed events in the room's DAG at hundreds per second instead of one storage write per send (56/s,
 * half an hour for the 100,000-event room). It also measures the raw IndexedDB read rate the cold-start
 * figure stands beside. Nothing here goes through the UI.
 */
import { bootPeer, loadOrCreateSeed, signerForSeed } from '../../../src/app/boot-peer.js';
import { eventIdOf, signEvent, type PDU } from '../../../src/core/index.js';
import { SESSION_KEY } from '../../../src/app/boot.js';
import { NO_RATE_LIMITS } from '../../../src/homeserver/index.js';
import { rawIdbReads } from './raw-idb.js';

export interface SeedResult {
  userId: string;
  roomId: string;
  events: number;
  seconds: number;
}

/** A message body of varying length, so rows of the timeline differ in height as they do in real rooms. */
function bodyOf(i: number): string {
  const words = ['tomatoes', 'the', 'relay', 'garden', 'peer', 'tonight', 'and', 'merge', 'seeds', 'water'];
  const length = 3 + ((i * 7919) % 40);
  const parts: string[] = [`#${i}`];
  for (let w = 0; w < length; w++) parts.push(words[(i + w * 3) % words.length]!);
  return parts.join(' ');
}

export async function seedProfile(profile: string, displayName: string, roomName: string, count: number): Promise<SeedResult> {
  const peer = await bootPeer({ profile, relays: [], broadcastChannel: `hometab-bench-seed/${Math.random()}`, homeserver: { rateLimits: NO_RATE_LIMITS }, log: { debug() {}, warn: console.warn, error: console.error } });
  try {
    const base = `https://${peer.serverName}`;
    const call = async (method: string, path: string, body: unknown, token?: string): Promise<any> => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      const response = await peer.homeserver.handleClient(new Request(base + path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }));
      const json = await response.json();
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
      return json;
    };
    const registered = await call('POST', '/_matrix/client/v3/register', { username: 'bench', auth: { type: 'm.login.dummy' }, initial_device_display_name: 'Hometab' });
    const session = { userId: registered.user_id as string, accessToken: registered.access_token as string, deviceId: registered.device_id as string };
    await peer.storage.write((txn) => txn.meta.put(SESSION_KEY, { ...session }));
    const token = session.accessToken;
    await call('PUT', `/_matrix/client/v3/profile/${encodeURIComponent(session.userId)}/displayname`, { displayname: displayName }, token);
    const { room_id: roomId } = await call('POST', '/_matrix/client/v3/createRoom', { name: roomName, preset: 'private_chat' }, token);
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/send/m.room.message/`;
    const started = performance.now();
    const { event_id: firstId } = await call('PUT', `${path}seed0`, { msgtype: 'm.text', body: bodyOf(0) }, token);
    const roomVersion = ((await call('GET', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.create/`, undefined, token)).room_version as string | undefined) ?? '1';
    const first = await peer.storage.read((txn) => txn.events.get(firstId as string));
    if (!first) throw new Error('the first seeded message is not stored');
    const signer = await signerForSeed(await loadOrCreateSeed(peer.storage));
    const { hashes: _h, signatures: _s, unsigned: _u, ...template } = first.event as PDU & { unsigned?: unknown };
    let previous = { id: firstId as string, depth: first.event.depth as number, ts: first.event.origin_server_ts as number };
    const batch = 500;
    for (let i = 1; i < count; i += batch) {
      const pdus: PDU[] = [];
      for (let k = i; k < Math.min(count, i + batch); k++) {
        const unsigned = { ...template, content: { msgtype: 'm.text', body: bodyOf(k) }, prev_events: [previous.id], depth: previous.depth + 1, origin_server_ts: previous.ts + 1 } as PDU;
        const signed = await signEvent(unsigned, signer, roomVersion);
        pdus.push(signed);
        previous = { id: eventIdOf(signed, roomVersion), depth: previous.depth + 1, ts: previous.ts + 1 };
      }
      const outcomes = await peer.homeserver.replication.receivePdus(pdus, peer.serverName);
      const refused = outcomes.find((o) => o.outcome !== 'accepted');
      if (refused) throw new Error(`seeding: message refused by the receive path: ${refused.outcome} ${refused.reason ?? ''}`);
    }
    return { userId: session.userId, roomId, events: count, seconds: (performance.now() - started) / 1000 };
  } finally {
    await peer.close();
  }
}

const w = window as unknown as { benchSeed: typeof seedProfile; benchRawReads: typeof rawIdbReads };
w.benchSeed = seedProfile;
w.benchRawReads = rawIdbReads;

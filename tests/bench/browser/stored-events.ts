/**
 * The storage half of a catch-up, alone: message events written the way a
 * received batch writes them (receive.ts → persist.ts writeStaged: each event
 * one `events.add` carrying its state groups, the room's extremities once per
 * write), `perWrite` events per storage write, into a fresh IndexedDB database
 * of the real schema. What the wire, the signature checks and the auth checks
 * add on top is the replication figure's difference from this one.
 */
import type { PDU } from '../../../src/core/index.js';
import { openIdbStorage } from '../../../src/storage/index.js';

const ROOM = '!7wDQk2lEifrj9jV4CyAdNwQrbSmmhZ6CTEVPqzc4FKU';
const SERVER = '7faaa777dc9a1fdf6b1c70f1f200bdecbc1498191eec9cefdcf4500e79717448';

/** An event ID of the shape room version 12 gives (a 43-character URL-safe base64 hash). */
function eventId(n: number): string {
  return `$${n.toString(36).padStart(10, '0')}${'NgPwVWGakMGTPkquGxQS9rz6UDaRA6WZe'}`;
}

/** A signed-looking message event as peers send it: the size of a real one, signatures and hashes included. */
function message(n: number, auth: readonly string[]): PDU {
  return {
    room_id: ROOM,
    sender: `@alice:${SERVER}`,
    type: 'm.room.message',
    content: { msgtype: 'm.text', body: `away ${n} ${'x'.repeat(40)}` },
    origin_server_ts: 1_765_000_000_000 + n,
    depth: n,
    prev_events: [eventId(n - 1)],
    auth_events: [...auth],
    hashes: { sha256: 'q'.repeat(43) },
    signatures: { [SERVER]: { 'ed25519:a': 's'.repeat(86) } },
  } as PDU;
}

/** Stores `total` linear message events, `perWrite` per storage write: events/s. */
export async function storedEventRate(total: number, perWrite: number): Promise<number> {
  const name = `stored-events-${Math.random()}`;
  const storage = await openIdbStorage(name, { exclusive: true });
  const auth = [eventId(-3), eventId(-2), eventId(-1)];
  const group = await storage.write((t) => t.stateGroups.create(ROOM, new Map()));
  const start = performance.now();
  for (let from = 1; from <= total; from += perWrite) {
    await storage.write(async (t) => {
      const adds: Promise<unknown>[] = [];
      for (let n = from; n < from + perWrite; n++) {
        adds.push(t.events.add({ eventId: eventId(n), roomId: ROOM, event: message(n, auth), stateGroups: { before: group, after: group } }));
      }
      await Promise.all(adds);
      await t.dag.setExtremities(ROOM, [eventId(from + perWrite - 1)]);
    });
  }
  const rate = (total * 1000) / (performance.now() - start);
  await storage.close();
  indexedDB.deleteDatabase(name);
  return rate;
}

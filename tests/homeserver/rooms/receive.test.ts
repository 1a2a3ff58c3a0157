// The receive path's order and outcomes, directly on the engine: known events are dropped before any
// signature work, a batch goes in parents first whatever its order, unknown parents and auth events
// come back as missingPrevs (nothing fetched, nothing stored), and /send announces them to p2p.
import { expect, test } from 'vitest';
import { eventIdOf, signEvent, stateKeyOf, type PDU } from '../../../src/core/index.js';
import type { TestServer } from '../harness.js';
import { hexSigner, startFederation } from '../../support/federation.js';
import { enc, withUsers } from './helpers.js';

async function setupPair() {
  const net = await startFederation(2);
  const [a, b] = net.servers as [TestServer, TestServer];
  const [alice] = await withUsers(a, 'alice');
  const [bob] = await withUsers(b, 'bob');
  const roomId = await alice!.createRoom({ preset: 'public_chat' });
  expect((await bob!.call('POST', `/join/${enc(roomId)}?via=${a.serverName}`, {})).status).toBe(200);
  await net.flush();
  const signer = await hexSigner(12);
  let ts = 1_950_000_000_000;
  /** A chain of `n` messages by bob on top of A's tips, each the parent of the next. */
  const chain = async (n: number): Promise<PDU[]> => {
    const state = await a.storage.read((t) => t.currentState.load(roomId));
    const auth = [state.get(stateKeyOf('m.room.power_levels', ''))!, state.get(stateKeyOf('m.room.member', bob!.userId))!];
    let prev = await a.storage.read((t) => t.dag.extremities(roomId));
    let depth = 1000;
    const out: PDU[] = [];
    for (let i = 0; i < n; i++) {
      const event = await signEvent({ room_id: roomId, sender: bob!.userId, type: 'm.room.message', content: { body: `m${i}` }, origin_server_ts: ts++, depth: depth++, prev_events: prev, auth_events: auth } as PDU, signer, '12');
      out.push(event);
      prev = [eventIdOf(event, '12')];
    }
    return out;
  };
  return { net, a, b, roomId, chain };
}

test('duplicates are dropped before signatures are checked; batches go in parents first', async () => {
  const { net, a, chain } = await setupPair();
  const events = await chain(5);
  const outcomes = await a.homeserver.replication.receivePdus([...events].reverse(), 'anyone');
  expect(outcomes.map((o) => o.outcome)).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted']);
  // A known event with a broken signature is a duplicate: its ID was enough, no signature was checked.
  const broken = { ...events[0]!, signatures: {} };
  expect((await a.homeserver.replication.receivePdus([broken], 'anyone'))[0]!.outcome).toBe('duplicate');
  await net.close();
});

test('unknown parents and auth events are missingPrevs, listed, not stored; /send tells the listener', async () => {
  const { net, a, b, roomId, chain } = await setupPair();
  const [first, second] = await chain(2);
  const firstId = eventIdOf(first!, '12');
  const [outcome] = await a.homeserver.replication.receivePdus([second!], b.serverName);
  expect(outcome).toMatchObject({ outcome: 'missingPrevs', missing: [firstId], roomId });
  expect(await a.storage.read((t) => t.events.has(outcome!.eventId!))).toBe(false);

  const heard: unknown[] = [];
  const stop = a.homeserver.replication.onMissingPrevs((origin, room, _pdu, missing) => heard.push({ origin, room, missing }));
  const response = await a.homeserver.handleFederation(
    new Request(`http://${a.serverName}/_matrix/federation/v1/send/x1`, { method: 'PUT', body: JSON.stringify({ origin: b.serverName, origin_server_ts: 1, pdus: [second], edus: [] }) }),
    b.serverName,
  );
  expect(response.status).toBe(200);
  expect(heard).toEqual([{ origin: b.serverName, room: roomId, missing: [firstId] }]);
  stop();
  // With the parent fetched (as p2p would), both go in.
  const retry = await a.homeserver.replication.receivePdus([second!, first!], b.serverName);
  expect(retry.map((o) => o.outcome)).toEqual(['accepted', 'accepted']);
  // Anti-entropy's view: both servers list the room, each naming the other.
  const rooms = await a.homeserver.replication.rooms();
  expect(rooms).toEqual([{ roomId, extremities: [eventIdOf(second!, '12')], servers: [b.serverName], maxDepth: second!.depth }]);
  await net.close();
});

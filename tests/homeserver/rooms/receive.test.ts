// The receive path's order and outcomes, directly on the engine: known events are dropped before any
// signature work, a batch goes in parents first whatever its order and in one storage write, unknown parents
// and auth events come back as missingPrevs (nothing fetched, nothing stored), /send announces them to p2p
// and answers per PDU, a batch whose write fails is written event by event, a batch that another write stored
// meanwhile is seen as duplicates, and signatures checked ahead by identifyPdus still decide; a page checked
// ahead is written without a read of which of its events are stored, and one stored already costs a second write.
import { expect, test } from 'vitest';
import { eventIdOf, signEvent, stateKeyOf, type PDU } from '../../../src/core/index.js';
import type { TestServer } from '../harness.js';
import { hexSigner } from '../../support/federation.js';
import { enc, twoServersInRoom, withUsers } from './helpers.js';

async function setupPair() {
  const { a, b, alice, bob, roomId } = await twoServersInRoom({ preset: 'public_chat' });
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
  return { a, b, roomId, chain };
}

test('duplicates are dropped before signatures are checked; batches go in parents first', async () => {
  const { a, chain } = await setupPair();
  const events = await chain(5);
  const outcomes = await a.homeserver.replication.receivePdus([...events].reverse(), 'anyone');
  expect(outcomes.map((o) => o.outcome)).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted']);
  // A known event with a broken signature is a duplicate: its ID was enough, no signature was checked.
  const broken = { ...events[0]!, signatures: {} };
  expect((await a.homeserver.replication.receivePdus([broken], 'anyone'))[0]!.outcome).toBe('duplicate');
});

test('unknown parents and auth events are missingPrevs, listed, not stored; /send tells the listener', async () => {
  const { a, b, roomId, chain } = await setupPair();
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
});

test('a batch is checked as one and written in ONE storage write; a forged event is refused alone, its descendants wait', async () => {
  const { a, b, chain } = await setupPair();
  const events = await chain(6);
  const ids = events.map((e) => eventIdOf(e, '12'));
  // The third event loses its signatures: invalid, and the three built on it lack a parent.
  const batch: unknown[] = events.map((e, i) => (i === 2 ? { ...e, signatures: {} } : e));
  let writes = 0;
  const write = a.storage.write.bind(a.storage);
  a.storage.write = ((fn: never) => {
    writes++;
    return write(fn);
  }) as typeof a.storage.write;
  const response = await a.homeserver.handleFederation(
    new Request(`http://${a.serverName}/_matrix/federation/v1/send/batch1`, { method: 'PUT', body: JSON.stringify({ origin: b.serverName, origin_server_ts: 1, pdus: batch, edus: [] }) }),
    b.serverName,
  );
  expect(response.status).toBe(200);
  const { pdus } = (await response.json()) as { pdus: Record<string, { error?: string }> };
  // Per-PDU results, as the spec asks: the honest ones went in, the forged one and its descendants did not.
  expect(pdus[ids[0]!]).toEqual({});
  expect(pdus[ids[1]!]).toEqual({});
  expect(pdus[ids[2]!]!.error).toMatch(/^invalid: no valid signature/);
  for (const id of ids.slice(3)) expect(pdus[id]!.error).toMatch(/^missingPrevs/);
  expect(writes).toBe(1);
  const stored = await a.storage.read((t) => t.events.getMany(ids));
  expect([...stored.keys()].sort()).toEqual([ids[0]!, ids[1]!].sort());
  // The batch's events took consecutive stream positions in DAG order, and the room's tip moved to the last one.
  expect(stored.get(ids[1]!)!.streamOrdering).toBe(stored.get(ids[0]!)!.streamOrdering! + 1);
  expect(await a.storage.read((t) => t.dag.extremities(events[0]!.room_id as string))).toEqual([ids[1]!]);
});

test('a batch whose write fails is written event by event, so one event that cannot be stored sinks no other', async () => {
  const { a, roomId, chain } = await setupPair();
  const events = await chain(4);
  const write = a.storage.write.bind(a.storage);
  let writes = 0;
  a.storage.write = ((fn: never) => {
    writes++;
    // The batch's write (the first) fails, as a full disk or an aborted IndexedDB transaction would.
    return writes === 1 ? Promise.reject(new Error('simulated write failure')) : write(fn);
  }) as typeof a.storage.write;
  const outcomes = await a.homeserver.replication.receivePdus(events, 'anyone');
  expect(outcomes.map((o) => o.outcome)).toEqual(['accepted', 'accepted', 'accepted', 'accepted']);
  expect(writes).toBe(1 + events.length);
  // The cached room followed the writes that committed: a local send builds on the last event.
  const [alice] = await withUsers(a, 'alice2');
  const joined = await alice!.call('POST', `/join/${enc(roomId)}`, {});
  expect(joined.status).toBe(200);
  const last = eventIdOf(events[3]!, '12');
  const tips = await a.storage.read((t) => t.dag.extremities(roomId));
  expect(tips).toHaveLength(1);
  expect(await a.storage.read((t) => t.dag.prevEvents(tips[0]!))).toEqual([last]);
});

test('the same batch by two paths at once: the second learns from the first write, not a second read, that its events are stored', async () => {
  const { a, chain } = await setupPair();
  const events = await chain(5);
  const read = a.storage.read.bind(a.storage);
  const write = a.storage.write.bind(a.storage);
  let readsDone = 0;
  let opened: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (opened = resolve));
  a.storage.read = (async (fn: never) => {
    const result = await read(fn);
    // The first batch's duplicate check and preload, then the second batch's duplicate check.
    if (++readsDone === 3) opened();
    return result;
  }) as typeof a.storage.read;
  let writes = 0;
  a.storage.write = (async (fn: never) => {
    writes++;
    // The first batch's write waits until the second has read (and found none of the events stored).
    await gate;
    return write(fn);
  }) as typeof a.storage.write;
  const [first, second] = await Promise.all([a.homeserver.replication.receivePdus(events, 'one'), a.homeserver.replication.receivePdus(events, 'other')]);
  expect(first!.map((o) => o.outcome)).toEqual(Array(5).fill('accepted'));
  expect(second!.map((o) => o.outcome)).toEqual(Array(5).fill('duplicate'));
  // One write: the second batch wrote nothing (a write of stored events would fail and be retried event by event).
  expect(writes).toBe(1);
});

test('signatures checked ahead (identifyPdus, as catch-up asks for the IDs of a page) are taken by receivePdus, and a forgery found ahead is still refused', async () => {
  const { a, roomId, chain } = await setupPair();
  const events = await chain(3);
  const forged = { ...events[2]!, content: { ...events[2]!.content }, signatures: { ...events[2]!.signatures } };
  const [origin] = Object.keys(forged.signatures!);
  forged.signatures![origin!] = { 'ed25519:12': 'A'.repeat(86) };
  const batch = [events[0]!, events[1]!, forged];
  const ids = await a.homeserver.replication.eventIds(roomId, batch);
  expect(ids).toEqual(batch.map((e) => eventIdOf(e, '12')));
  const outcomes = await a.homeserver.replication.receivePdus(batch, 'anyone');
  expect(outcomes.map((o) => o.outcome)).toEqual(['accepted', 'accepted', 'invalid']);
  expect(outcomes[2]!.reason).toContain('no valid signature');
});

test('a page checked ahead is not read for stored events: one write stores it, and a stored event in it costs a second write, not the batch', async () => {
  const { a, roomId, chain } = await setupPair();
  const events = await chain(6);
  // Two of the page's events arrived before it (as a live /send would bring them).
  const early = await a.homeserver.replication.receivePdus(events.slice(0, 2), 'live');
  expect(early.map((o) => o.outcome)).toEqual(['accepted', 'accepted']);

  const read = a.storage.read.bind(a.storage);
  const write = a.storage.write.bind(a.storage);
  let reads = 0;
  let writes = 0;
  a.storage.read = ((fn: never) => (reads++, read(fn))) as typeof a.storage.read;
  a.storage.write = ((fn: never) => (writes++, write(fn))) as typeof a.storage.write;
  const fresh = events.slice(2, 4);
  await a.homeserver.replication.eventIds(roomId, fresh);
  const first = await a.homeserver.replication.receivePdus(fresh, 'peer');
  expect(first.map((o) => o.outcome)).toEqual(['accepted', 'accepted']);
  // One write, and no read of the page's own events: the preload reads only their stored parent.
  expect({ reads, writes }).toEqual({ reads: 1, writes: 1 });

  reads = writes = 0;
  const overlapping = [events[1]!, ...events.slice(4)];
  await a.homeserver.replication.eventIds(roomId, overlapping);
  const second = await a.homeserver.replication.receivePdus(overlapping, 'peer');
  expect(second.map((o) => o.outcome)).toEqual(['duplicate', 'accepted', 'accepted']);
  // The first write refused the stored event (EXISTS) and stored nothing; the second, after a read, the rest.
  expect(writes).toBe(2);
  a.storage.read = read;
  a.storage.write = write;
  const stored = await a.storage.read((t) => t.events.getMany(events.map((e) => eventIdOf(e, '12'))));
  expect(stored.size).toBe(6);
  expect(await a.storage.read((t) => t.dag.children(eventIdOf(events[4]!, '12')))).toEqual([eventIdOf(events[5]!, '12')]);
});

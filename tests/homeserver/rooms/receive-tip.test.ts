// The receive path's lane for one PDU on the room's only tip (receive-tip.ts): a peer's next message costs one
// storage write and no read, with every check still made (a forged signature is refused, an event failing auth
// is stored as rejected and leaves the tip alone), known events are dropped from memory before any signature
// work, a failed write goes the general path, and a reloaded server (whose memory is empty) takes the general
// path until it has written the tip itself.
import { expect, test } from 'vitest';
import { eventIdOf, signEvent, stateKeyOf, type PDU, type Signer } from '../../../src/core/index.js';
import { startTestServer, type TestServer } from '../harness.js';
import { hexSigner } from '../../support/federation.js';
import { twoServersInRoom } from './helpers.js';

/** A's storage calls while `fn` runs. */
async function counted<T>(server: TestServer, fn: () => Promise<T>): Promise<{ result: T; reads: number; writes: number }> {
  const { read, write } = server.storage;
  let reads = 0;
  let writes = 0;
  server.storage.read = ((inner: never) => {
    reads++;
    return read.call(server.storage, inner);
  }) as typeof read;
  server.storage.write = ((inner: never) => {
    writes++;
    return write.call(server.storage, inner);
  }) as typeof write;
  try {
    return { result: await fn(), reads, writes };
  } finally {
    server.storage.read = read;
    server.storage.write = write;
  }
}

async function setup() {
  const { a, b, bob, roomId } = await twoServersInRoom({ preset: 'public_chat' });
  const signer = await hexSigner(12);
  let ts = 1_950_000_000_000;
  /** An event of B's on A's current tip, signed by B. */
  const onTip = async (server: TestServer, sender: string, content: Record<string, unknown>, by: Signer = signer): Promise<PDU> => {
    const state = await server.storage.read((t) => t.currentState.load(roomId));
    // Room version 12: the create event is implied (the room ID names it), never listed.
    const auth = [state.get(stateKeyOf('m.room.power_levels', ''))!];
    const member = state.get(stateKeyOf('m.room.member', sender));
    if (member) auth.push(member);
    const prev = await server.storage.read((t) => t.dag.extremities(roomId));
    const depth = Math.max(...[...(await server.storage.read((t) => t.events.getMany(prev))).values()].map((r) => r.depth)) + 1;
    return signEvent({ room_id: roomId, sender, type: 'm.room.message', content, origin_server_ts: ts++, depth, prev_events: prev, auth_events: auth } as PDU, by, '12');
  };
  return { a, b, bobId: bob.userId, roomId, onTip };
}

test("a peer's next message on the room's only tip: one write, no read; the one after it too; a copy is dropped from memory", async () => {
  const { a, bobId, roomId, onTip } = await setup();
  let pdu: PDU | undefined;
  for (const body of ['first', 'second']) {
    pdu = await onTip(a, bobId, { msgtype: 'm.text', body });
    const { result, reads, writes } = await counted(a, () => a.homeserver.replication.receivePdus([pdu], 'anyone'));
    expect(result.map((o) => o.outcome)).toEqual(['accepted']);
    expect({ reads, writes }).toEqual({ reads: 0, writes: 1 });
    expect(await a.storage.read((t) => t.dag.extremities(roomId))).toEqual([eventIdOf(pdu, '12')]);
  }
  // A known event, even with its signatures stripped, is a duplicate by its ID alone: no storage, no signature check.
  const { result, reads, writes } = await counted(a, () => a.homeserver.replication.receivePdus([{ ...pdu!, signatures: {} }], 'anyone'));
  expect(result.map((o) => o.outcome)).toEqual(['duplicate']);
  expect({ reads, writes }).toEqual({ reads: 0, writes: 0 });
});

test('every check is still made on the tip: a forged signature is refused unstored, an event failing auth is stored rejected and the tip stays', async () => {
  const { a, bobId, roomId, onTip } = await setup();
  const tip = await a.storage.read((t) => t.dag.extremities(roomId));
  const forged = await onTip(a, bobId, { msgtype: 'm.text', body: 'forged' }, await hexSigner(13));
  const [refused] = await a.homeserver.replication.receivePdus([forged], 'anyone');
  expect(refused).toMatchObject({ outcome: 'invalid' });
  expect(await a.storage.read((t) => t.events.has(refused!.eventId!))).toBe(false);

  // Signed by B, for a user of B who never joined: the auth rules refuse it.
  const stranger = `@mallory:${bobId.slice(bobId.indexOf(':') + 1)}`;
  const unauthorised = await onTip(a, stranger, { msgtype: 'm.text', body: 'let me in' });
  const { result, reads, writes } = await counted(a, () => a.homeserver.replication.receivePdus([unauthorised], 'anyone'));
  expect(result).toMatchObject([{ outcome: 'rejected' }]);
  expect({ reads, writes }).toEqual({ reads: 0, writes: 1 });
  expect((await a.storage.read((t) => t.events.get(result[0]!.eventId!)))?.rejected).toBeTruthy();
  expect(await a.storage.read((t) => t.dag.extremities(roomId))).toEqual(tip);
});

test('a failed write goes the general path, which stores the event', async () => {
  const { a, bobId, roomId, onTip } = await setup();
  const pdu = await onTip(a, bobId, { msgtype: 'm.text', body: 'retried' });
  const write = a.storage.write;
  let writes = 0;
  a.storage.write = ((fn: never) => (++writes === 1 ? Promise.reject(new Error('simulated write failure')) : write.call(a.storage, fn))) as typeof write;
  const [outcome] = await a.homeserver.replication.receivePdus([pdu], 'anyone');
  a.storage.write = write;
  expect(outcome).toMatchObject({ outcome: 'accepted' });
  expect(writes).toBe(2);
  expect(await a.storage.read((t) => t.dag.extremities(roomId))).toEqual([eventIdOf(pdu, '12')]);
});

test('after a reload the memory is empty: the general path takes the tip and copies of stored events, then the lane resumes', async () => {
  const { a, bobId, onTip } = await setup();
  const stranger = `@mallory:${bobId.slice(bobId.indexOf(':') + 1)}`;
  const unauthorised = await onTip(a, stranger, { msgtype: 'm.text', body: 'let me in' });
  expect((await a.homeserver.replication.receivePdus([unauthorised], 'anyone'))[0]).toMatchObject({ outcome: 'rejected' });

  // The same storage under a new homeserver, as after a reload of the tab.
  const reloaded = await startTestServer({ storage: a.storage, signer: await hexSigner(11) });
  // A stored outlier on the tip, not remembered: still a duplicate.
  expect((await reloaded.homeserver.replication.receivePdus([unauthorised], 'anyone'))[0]).toMatchObject({ outcome: 'duplicate' });
  const first = await onTip(reloaded, bobId, { msgtype: 'm.text', body: 'after reload' });
  const general = await counted(reloaded, () => reloaded.homeserver.replication.receivePdus([first], 'anyone'));
  expect(general.result.map((o) => o.outcome)).toEqual(['accepted']);
  expect(general.reads).toBeGreaterThan(0);
  const second = await onTip(reloaded, bobId, { msgtype: 'm.text', body: 'and on' });
  const lane = await counted(reloaded, () => reloaded.homeserver.replication.receivePdus([second], 'anyone'));
  expect(lane.result.map((o) => o.outcome)).toEqual(['accepted']);
  expect({ reads: lane.reads, writes: lane.writes }).toEqual({ reads: 0, writes: 1 });
});

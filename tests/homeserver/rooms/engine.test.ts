// The room engine directly: events from a peer go through the same pipeline as local ones
// (fork and merge, rejection, soft fail, remote redactions), the cache survives a restart,
// and a failed write leaves the cache as it was.
import { describe, expect, test } from 'vitest';
import { createSigner, signEvent, stateKeyOf, type PDU, type Signer } from '../../../src/core/index.js';
import { DEFAULT_CONFIG, type HomeserverContext } from '../../../src/homeserver/context.js';
import { createRoomEngine } from '../../../src/homeserver/rooms/engine.js';
import type { RoomEngine } from '../../../src/homeserver/rooms/types.js';
import { createMemoryStorage } from '../../../src/storage/memory/index.js';
import type { Storage } from '../../../src/storage/types.js';

const quiet = { debug() {}, warn() {}, error() {} };

async function localContext(storage: Storage): Promise<HomeserverContext> {
  const signer = await createSigner(new Uint8Array(32).fill(7), 'hs.test', 'ed25519:1');
  let now = 1_700_000_000_000;
  return {
    serverName: 'hs.test',
    storage,
    signer,
    clock: { now: () => now++ },
    config: DEFAULT_CONFIG,
    log: quiet,
    randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)),
  };
}

/** A peer whose server name is the hex of its ed25519 public key, as Hometab servers are named. */
async function remotePeer(): Promise<Signer> {
  const seed = new Uint8Array(32).fill(9);
  const probe = await createSigner(seed, 'probe', 'ed25519:1');
  const name = Buffer.from(probe.publicKey).toString('hex');
  return createSigner(seed, name, 'ed25519:1');
}

async function stateId(storage: Storage, roomId: string, type: string, stateKey: string): Promise<string> {
  const id = await storage.read((txn) => txn.currentState.get(roomId, type, stateKey));
  if (!id) throw new Error(`no ${type}/${stateKey}`);
  return id;
}

async function depthOf(storage: Storage, eventId: string): Promise<number> {
  return (await storage.read((txn) => txn.events.get(eventId)))!.depth;
}

describe.each(['10', '11', '12'])('room version %s', (roomVersion) => {
  test('peer events: join, fork, merge, rejection, soft fail, redaction', async () => {
    const storage = createMemoryStorage();
    const ctx = await localContext(storage);
    const engine = createRoomEngine(ctx);
    const peer = await remotePeer();
    const bob = `@bob:${peer.serverName}`;
    const alice = '@alice:hs.test';
    const { roomId } = await engine.createRoom(alice, { preset: 'public_chat', room_version: roomVersion });

    let ts = 1_800_000_000_000;
    const remote = async (fields: Partial<PDU> & { type: string; content: Record<string, unknown> }, prev: string[], auth: string[]) => {
      const depths = await Promise.all(prev.map((id) => depthOf(storage, id)));
      const event: PDU = {
        room_id: roomId,
        sender: bob,
        origin_server_ts: ts++,
        depth: Math.max(...depths) + 1,
        prev_events: prev,
        auth_events: auth,
        ...fields,
      };
      return signEvent(event, peer, roomVersion);
    };
    const createId = roomVersion === '12' ? [] : [await stateId(storage, roomId, 'm.room.create', '')];
    const powerLevels = await stateId(storage, roomId, 'm.room.power_levels', '');
    const joinRules = await stateId(storage, roomId, 'm.room.join_rules', '');
    const tip = async () => (await storage.read((txn) => txn.dag.extremities(roomId))).sort();

    // Bob's server sends his join.
    const join = await remote({ type: 'm.room.member', state_key: bob, content: { membership: 'join' } }, await tip(), [...createId, powerLevels, joinRules]);
    const joined = await engine.receiveEvent(join, peer.serverName);
    expect(joined.outcome).toBe('accepted');
    expect(await engine.membership(roomId, bob)).toBe('join');
    expect(await engine.receiveEvent(join, peer.serverName)).toMatchObject({ outcome: 'duplicate', eventId: joined.eventId });

    // Both servers write at once on the same parent: a fork with two extremities.
    const local1 = await engine.sendEvent(roomId, alice, { type: 'm.room.message', content: { body: 'from alice' } });
    const bobMember = joined.eventId;
    const remote1 = await remote({ type: 'm.room.message', content: { body: 'from bob' } }, [joined.eventId], [...createId, powerLevels, bobMember]);
    const fromBob = await engine.receiveEvent(remote1, peer.serverName);
    expect(fromBob.outcome).toBe('accepted');
    expect(await tip()).toEqual([local1.eventId, fromBob.eventId].sort());

    // The next local event merges both branches.
    const merge = await engine.sendEvent(roomId, alice, { type: 'm.room.message', content: { body: 'merge' } });
    expect([...merge.event.prev_events].sort()).toEqual([local1.eventId, fromBob.eventId].sort());
    expect(await tip()).toEqual([merge.eventId]);

    // A name change by Bob (level 0, needs 50) is rejected and kept as a rejected outlier.
    const rename = await remote({ type: 'm.room.name', state_key: '', content: { name: 'Bob was here' } }, [merge.eventId], [...createId, powerLevels, bobMember]);
    const rejected = await engine.receiveEvent(rename, peer.serverName);
    expect(rejected.outcome).toBe('rejected');
    const stored = await storage.read((txn) => txn.events.get(rejected.eventId));
    expect(stored).toMatchObject({ outlier: true });
    expect(stored!.rejected).toMatch(/power level/);
    expect(await tip()).toEqual([merge.eventId]);

    // A tampered event fails its signature check and is not stored at all.
    const forged = { ...(await remote({ type: 'm.room.message', content: { body: 'x' } }, [merge.eventId], [...createId, powerLevels, bobMember])) };
    forged.origin_server_ts += 1;
    await expect(engine.receiveEvent(forged, peer.serverName)).rejects.toThrow(/signature/);

    // Bob redacts his own message remotely (same server as its sender): carried out.
    const redacts = roomVersion === '10' ? { redacts: fromBob.eventId, content: {} } : { content: { redacts: fromBob.eventId } };
    const redaction = await remote({ type: 'm.room.redaction', ...redacts }, [merge.eventId], [...createId, powerLevels, bobMember]);
    expect((await engine.receiveEvent(redaction, peer.serverName)).outcome).toBe('accepted');
    expect((await storage.read((txn) => txn.events.get(fromBob.eventId)))!.redactedBy).toBeDefined();

    // Concurrent state on two branches: Bob renames himself while Alice writes; resolution merges them.
    const base = (await tip())[0]!;
    const local2 = await engine.sendEvent(roomId, alice, { type: 'm.room.message', content: { body: 'concurrent' } });
    const nick = await remote(
      { type: 'm.room.member', state_key: bob, content: { membership: 'join', displayname: 'Bobby' } },
      [base],
      [...createId, powerLevels, bobMember, joinRules],
    );
    const renamed = await engine.receiveEvent(nick, peer.serverName);
    expect(renamed.outcome).toBe('accepted');
    expect(await tip()).toEqual([local2.eventId, renamed.eventId].sort());
    expect((await engine.currentStateEvent(roomId, 'm.room.member', bob))!.content).toEqual({ membership: 'join', displayname: 'Bobby' });
    expect(await storage.read((txn) => txn.currentState.get(roomId, 'm.room.member', bob))).toBe(renamed.eventId);
    expect((await storage.read((txn) => txn.memberships.get(roomId, bob)))!.eventId).toBe(renamed.eventId);

    // Alice bans Bob; a message Bob's server built before seeing the ban is soft-failed.
    const beforeBan = (await tip())[0]!;
    await engine.updateMembership(roomId, alice, bob, 'ban');
    const late = await remote({ type: 'm.room.message', content: { body: 'too late' } }, [beforeBan], [...createId, powerLevels, bobMember]);
    const soft = await engine.receiveEvent(late, peer.serverName);
    expect(soft.outcome).toBe('softFailed');
    expect(await storage.read((txn) => txn.events.get(soft.eventId))).toMatchObject({ outlier: true, softFailed: true });
    expect((await tip()).length).toBe(1);
    expect(await engine.membership(roomId, bob)).toBe('ban');
  });
});

test('a new engine on the same storage continues where the old one stopped', async () => {
  const storage = createMemoryStorage();
  const ctx = await localContext(storage);
  const first = createRoomEngine(ctx);
  const { roomId } = await first.createRoom('@alice:hs.test', { name: 'Persisted' });
  const last = await first.sendEvent(roomId, '@alice:hs.test', { type: 'm.room.message', content: { body: '1' } });

  const second: RoomEngine = createRoomEngine(ctx);
  expect(await second.roomVersion(roomId)).toBe('12');
  expect((await second.currentStateEvent(roomId, 'm.room.name', ''))!.content).toEqual({ name: 'Persisted' });
  const next = await second.sendEvent(roomId, '@alice:hs.test', { type: 'm.room.message', content: { body: '2' } });
  expect(next.event.prev_events).toEqual([last.eventId]);
  expect(next.depth).toBe(last.depth + 1);
  // The state group chain continues too: the state after the new event is the room's state.
  const after = await second.stateAfter(next.eventId);
  expect(after!.get(stateKeyOf('m.room.name', ''))).toBeDefined();
  expect(await second.stateAfter('$missing')).toBeUndefined();
});

test('a write that fails leaves storage and the cache as they were', async () => {
  const real = createMemoryStorage();
  let failNext = false;
  const storage: Storage = {
    read: (fn) => real.read(fn),
    subscribe: (l) => real.subscribe(l),
    close: () => real.close(),
    write: (fn) =>
      real.write(async (txn) => {
        const result = await fn(txn);
        if (failNext) {
          failNext = false;
          throw new Error('disk full');
        }
        return result;
      }),
  };
  const ctx = await localContext(storage);
  const engine = createRoomEngine(ctx);
  const { roomId } = await engine.createRoom('@alice:hs.test', {});
  const before = await engine.sendEvent(roomId, '@alice:hs.test', { type: 'm.room.message', content: { body: 'ok' } });

  failNext = true;
  await expect(engine.sendEvent(roomId, '@alice:hs.test', { type: 'm.room.name', stateKey: '', content: { name: 'lost' } })).rejects.toThrow('disk full');
  expect(await engine.currentStateEvent(roomId, 'm.room.name', '')).toBeUndefined();
  expect(await real.read((txn) => txn.dag.extremities(roomId))).toEqual([before.eventId]);

  const after = await engine.sendEvent(roomId, '@alice:hs.test', { type: 'm.room.message', content: { body: 'still fine' } });
  expect(after.event.prev_events).toEqual([before.eventId]);
});

test('updateProfileInRooms sends a new join into each joined room', async () => {
  const storage = createMemoryStorage();
  const ctx = await localContext(storage);
  const engine = createRoomEngine(ctx);
  const a = (await engine.createRoom('@alice:hs.test', {})).roomId;
  const b = (await engine.createRoom('@alice:hs.test', { room_version: '10' })).roomId;
  await engine.updateProfileInRooms('@alice:hs.test', { displayname: 'Alice', avatar_url: 'mxc://hs.test/abc' });
  for (const roomId of [a, b]) {
    const member = await engine.currentStateEvent(roomId, 'm.room.member', '@alice:hs.test');
    expect(member!.content).toEqual({ membership: 'join', displayname: 'Alice', avatar_url: 'mxc://hs.test/abc' });
  }
  // Unchanged profile: no new events.
  const position = await storage.read((txn) => txn.stream.current());
  await engine.updateProfileInRooms('@alice:hs.test', { displayname: 'Alice', avatar_url: 'mxc://hs.test/abc' });
  expect(await storage.read((txn) => txn.stream.current())).toBe(position);
  await engine.updateProfileInRooms('@alice:hs.test', { displayname: null });
  expect((await engine.currentStateEvent(a, 'm.room.member', '@alice:hs.test'))!.content).toEqual({ membership: 'join' });
});

/**
 * End-to-end encryption across servers: matrix-js-sdk 43 clients with the
 * Rust crypto, each on its own homeserver, the homeservers replicating over
 * the memory network through their replicators (the real outbox sender and
 * catch-up). Keys are queried and claimed over federation (user/keys/query,
 * user/keys/claim), Olm and Megolm keys travel as m.direct_to_device EDUs.
 *
 * - an encrypted direct chat between two servers: each message decrypts on both sides;
 * - an encrypted room across three servers: every message decrypts for every member;
 * - a member's server offline while a new room key is shared: the key waits in the
 *   sender's outbox (which survives a restart of the sender's replicator) and the
 *   member decrypts everything once back;
 * - a server not in the room holds nothing of it, a member server whose user has no
 *   crypto (an always-on peer) holds only ciphertext, and no server stores plaintext
 *   anywhere (events, outbox, to-device inboxes);
 * - a late joiner on another server reads earlier history only as history
 *   visibility allows: what his server is given (backfill filtered by the
 *   resident servers) and what his device can decrypt (the keys the senders'
 *   Rust crypto shared with him), for `joined`, `invited` and `shared`, with
 *   and without the inviter's cross-signing (matrix-js-sdk 43 shares a key
 *   bundle of the room's history on invite, MSC4268, only from a device its
 *   owner's cross-signing identity has verified).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Direction, EventType, MsgType, type MatrixClient } from 'matrix-js-sdk';
import { DecryptionFailureCode } from 'matrix-js-sdk/lib/crypto-api/index.js';
import { decryptedBody, memberJoined, PASSWORD, startCryptoClient, startE2eeNetwork, storedText, waitFor, type E2eeNetwork } from '../support/e2ee.js';

const ENCRYPTION = { type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } };
const enc = encodeURIComponent;

let net: E2eeNetwork;
const clients: MatrixClient[] = [];
/** Every plaintext body sent, to scan the stores for. */
const sentBodies: string[] = [];

async function send(client: MatrixClient, roomId: string, body: string): Promise<string> {
  sentBodies.push(body);
  return (await client.sendMessage(roomId, { msgtype: MsgType.Text, body })).event_id;
}

describe('end-to-end encryption across servers (matrix-js-sdk Rust crypto, memory network)', () => {
  let alice: MatrixClient;
  let bob: MatrixClient;
  let carol: MatrixClient;
  let dmRoom: string;
  let groupRoom: string;

  beforeAll(async () => {
    net = await startE2eeNetwork(4);
    const [a, b, c] = net.peers;
    alice = await startCryptoClient(a!.server, 'alice');
    bob = await startCryptoClient(b!.server, 'bob');
    carol = await startCryptoClient(c!.server, 'carol');
    clients.push(alice, bob, carol);
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.stopClient();
    await net?.close();
  });

  it('an encrypted direct chat between two servers decrypts on both sides', async () => {
    const created = await alice.createRoom({ is_direct: true, invite: [bob.getUserId()!], initial_state: [ENCRYPTION] });
    dmRoom = created.room_id;
    await waitFor('Bob to see the invite', () => (bob.getRoom(dmRoom)?.getMyMembership() === 'invite' ? true : undefined));
    await bob.joinRoom(dmRoom);
    await memberJoined(alice, dmRoom, bob.getUserId()!);

    await send(alice, dmRoom, 'dm: hello bob, from another server');
    for (const client of [alice, bob]) {
      const event = await decryptedBody(client, dmRoom, 'dm: hello bob, from another server');
      expect(event.getWireType()).toBe(EventType.RoomMessageEncrypted);
      expect(event.getSender()).toBe(alice.getUserId());
    }
    await send(bob, dmRoom, 'dm: hello alice');
    for (const client of [alice, bob]) expect((await decryptedBody(client, dmRoom, 'dm: hello alice')).getSender()).toBe(bob.getUserId());

    // Each side learnt the other's devices from the other's server.
    const bobsDevices = await alice.getCrypto()!.getUserDeviceInfo([bob.getUserId()!]);
    expect([...(bobsDevices.get(bob.getUserId()!)?.keys() ?? [])]).toEqual([bob.getDeviceId()]);
  }, 90_000);

  it('an encrypted room across three servers: every message decrypts for every member', async () => {
    const created = await alice.createRoom({ name: 'three servers', invite: [bob.getUserId()!, carol.getUserId()!], initial_state: [ENCRYPTION] });
    groupRoom = created.room_id;
    for (const client of [bob, carol]) {
      await waitFor(`${client.getUserId()} to see the invite`, () => (client.getRoom(groupRoom)?.getMyMembership() === 'invite' ? true : undefined));
      await client.joinRoom(groupRoom);
    }
    for (const client of [alice, bob, carol]) {
      for (const other of [alice, bob, carol]) await memberJoined(client, groupRoom, other.getUserId()!);
    }
    const bodies: string[] = [];
    for (const [i, sender] of [alice, bob, carol, alice, carol].entries()) {
      const body = `group ${i} from ${sender.getUserId()}`;
      bodies.push(body);
      await send(sender, groupRoom, body);
    }
    for (const client of [alice, bob, carol]) {
      for (const body of bodies) expect((await decryptedBody(client, groupRoom, body)).isEncrypted()).toBe(true);
    }
  }, 120_000);

  it('a member offline while a new room key is shared decrypts everything after catching up, across a restart of the sender', async () => {
    const [a, , c] = net.peers;
    await net.offline(c!);
    // A new Megolm session: its key goes to Bob at once and to Carol through Alice's server's outbox.
    await alice.getCrypto()!.forceDiscardSession(groupRoom);
    const whileAway = ['while carol is away 1', 'while carol is away 2'];
    for (const body of whileAway) await send(alice, groupRoom, body);
    for (const body of whileAway) await decryptedBody(bob, groupRoom, body);
    const toCarol = await waitFor('the room key for Carol to be queued', async () => {
      const queued = await a!.server.storage.read((t) => t.outbound.peek(c!.name, 1_000));
      const edus = queued.map((r) => (r.payload as { edu?: { edu_type?: string } }).edu).filter((e) => e?.edu_type === 'm.direct_to_device');
      return edus.length > 0 ? edus : undefined;
    });
    expect(toCarol.length).toBeGreaterThan(0);
    // Alice's server restarts its replication while Carol's is away: the queue is in storage.
    await net.offline(a!);
    await net.online(a!);
    await net.online(c!);
    for (const body of whileAway) await decryptedBody(carol, groupRoom, body, 60_000);
    await send(carol, groupRoom, 'carol is back');
    for (const client of [alice, bob]) await decryptedBody(client, groupRoom, 'carol is back');
  }, 120_000);

  it('a server not in the room holds nothing of it; a member server without crypto holds only ciphertext; no store holds plaintext', async () => {
    const [, , , d] = net.peers;
    // D is not in the direct chat at all.
    expect((await storedText(d!.server.storage, dmRoom)).roomEvents).toBe(0);
    // D's user joins the group room without any crypto (as an always-on peer does) and receives the history.
    const dave = await d!.server.register('dave');
    await alice.invite(groupRoom, dave.userId);
    await waitFor('the invite to reach D', async () => ((await d!.server.call('GET', '/_matrix/client/v3/sync?timeout=0', undefined, dave.accessToken)).json?.rooms?.invite?.[groupRoom] ? true : undefined));
    const joined = await d!.server.call('POST', `/_matrix/client/v3/join/${enc(groupRoom)}`, {}, dave.accessToken);
    expect(joined.status, JSON.stringify(joined.json)).toBe(200);
    await send(alice, groupRoom, 'after dave joined');
    await waitFor('D to store the message after its join', async () => ((await storedText(d!.server.storage, groupRoom)).encrypted > 0 ? true : undefined));
    const onD = await storedText(d!.server.storage, groupRoom);
    expect(onD.encrypted).toBeGreaterThan(0);
    const messages = await d!.server.call('GET', `/_matrix/client/v3/rooms/${enc(groupRoom)}/messages?dir=b&limit=100`, undefined, dave.accessToken);
    const types = (messages.json.chunk as { type: string }[]).map((e) => e.type);
    expect(types).toContain('m.room.encrypted');
    expect(types).not.toContain('m.room.message');

    for (const peer of net.peers) {
      const { text } = await storedText(peer.server.storage, groupRoom);
      for (const body of sentBodies) expect(text.includes(body), `${body} in the store of ${peer.name.slice(0, 8)}`).toBe(false);
    }
    // The scan itself finds plaintext when there is some: an unencrypted message shows up.
    await d!.server.call('PUT', `/_matrix/client/v3/rooms/${enc(groupRoom)}/send/m.room.message/plain1`, { msgtype: 'm.text', body: 'a plaintext control' }, dave.accessToken);
    expect((await storedText(d!.server.storage, groupRoom)).text).toContain('a plaintext control');
  }, 90_000);
});

/** Pages back (scrollback → /messages → backfill) until the server has nothing older to give. */
async function scrollToStart(client: MatrixClient, roomId: string): Promise<void> {
  const room = client.getRoom(roomId)!;
  for (let page = 0; page < 50; page++) {
    await client.scrollback(room, 20);
    if (room.getLiveTimeline().getPaginationToken(Direction.Backward) === null) return;
  }
  throw new Error('the timeline never reached the start of the room');
}

/** Cross-signing keys made and uploaded by the client, its device signed with them (as Element does at first login). */
async function setUpCrossSigning(client: MatrixClient): Promise<void> {
  await client.getCrypto()!.bootstrapCrossSigning({
    authUploadDeviceSigningKeys: async (makeRequest) => {
      await makeRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: client.getUserId()! }, password: PASSWORD });
    },
  });
  expect(await client.getCrypto()!.isCrossSigningReady()).toBe(true);
}

/** What a member's client shows of an encrypted message: its text, or why it could not decrypt it. */
type Shown = { body: string } | { failure: DecryptionFailureCode | null };

/**
 * The encrypted messages in the client's timeline, by event ID, once every decryption has settled;
 * `until` is retried (with new decryption attempts: a key may be in flight) until it holds.
 */
async function shownMessages(client: MatrixClient, roomId: string, until: (shown: Map<string, Shown>) => boolean): Promise<Map<string, Shown>> {
  let last = new Map<string, Shown>();
  try {
    return await waitFor(`${client.getUserId()}'s view of the history`, async () => {
      const shown = new Map<string, Shown>();
      for (const event of client.getRoom(roomId)?.getLiveTimeline().getEvents() ?? []) {
        if (event.getWireType() !== EventType.RoomMessageEncrypted) continue;
        await client.decryptEventIfNeeded(event, { isRetry: event.isDecryptionFailure() });
        shown.set(event.getId()!, event.isDecryptionFailure() ? { failure: event.decryptionFailureReason } : { body: event.getContent().body as string });
      }
      last = shown;
      return until(shown) ? shown : undefined;
    });
  } catch (error) {
    throw new Error(`${(error as Error).message}; last seen: ${JSON.stringify([...last])}`);
  }
}

describe('a late joiner on another server reads earlier history only as history visibility allows (Rust crypto, memory network)', () => {
  let lateNet: E2eeNetwork;
  let alice: MatrixClient;
  let bob: MatrixClient;
  const lateClients: MatrixClient[] = [];

  beforeAll(async () => {
    lateNet = await startE2eeNetwork(3, { firstSeed: 111 });
    const [a, b] = lateNet.peers;
    alice = await startCryptoClient(a!.server, 'alice');
    bob = await startCryptoClient(b!.server, 'bob');
    lateClients.push(alice, bob);
  }, 60_000);

  afterAll(async () => {
    for (const client of lateClients) client.stopClient();
    await lateNet?.close();
  });

  /**
   * Alice (server A) and Bob (B) talk in an encrypted room with the given history visibility; Dave, a new user
   * on C (his device made after those messages), is invited by Alice, one more message is sent while he is
   * invited, he joins, Bob writes again, and Dave pages back to the room's start.
   */
  async function lateJoin(visibility: 'joined' | 'invited' | 'shared', name: string, options: { daveCrossSigned?: boolean } = {}) {
    const [, , c] = lateNet.peers;
    const { room_id: roomId } = await alice.createRoom({
      name,
      invite: [bob.getUserId()!],
      initial_state: [ENCRYPTION, { type: 'm.room.history_visibility', state_key: '', content: { history_visibility: visibility } }],
    });
    await waitFor('Bob to see the invite', () => (bob.getRoom(roomId)?.getMyMembership() === 'invite' ? true : undefined));
    await bob.joinRoom(roomId);
    await memberJoined(alice, roomId, bob.getUserId()!);
    const beforeInvite = [await send(alice, roomId, `${name}: before the invite, from alice`), await send(bob, roomId, `${name}: before the invite, from bob`)];
    await decryptedBody(alice, roomId, `${name}: before the invite, from bob`);
    await decryptedBody(bob, roomId, `${name}: before the invite, from alice`);

    const dave = await startCryptoClient(c!.server, `dave-${name.replace(/[^a-z]+/g, '-')}`);
    lateClients.push(dave);
    if (options.daveCrossSigned) await setUpCrossSigning(dave);
    await alice.invite(roomId, dave.getUserId()!);
    await waitFor('Dave to see the invite', () => (dave.getRoom(roomId)?.getMyMembership() === 'invite' ? true : undefined));
    // Alice's client encrypts for invited members once it knows of the invite (its own sync brings it).
    await waitFor('Alice to see Dave invited', () => (alice.getRoom(roomId)?.getMember(dave.getUserId()!)?.membership === 'invite' ? true : undefined));
    const whileInvited = await send(alice, roomId, `${name}: while dave is invited`);
    await dave.joinRoom(roomId);
    await memberJoined(dave, roomId, dave.getUserId()!);
    await memberJoined(bob, roomId, dave.getUserId()!);
    const afterJoin = await send(bob, roomId, `${name}: after dave joined`);
    await decryptedBody(dave, roomId, `${name}: after dave joined`);
    await scrollToStart(dave, roomId);
    /** The events C's server holds of the room. */
    const heldOnC = async () => new Set((await c!.server.storage.read((t) => t.timeline.rangeAll({ dir: 'f', from: 0, limit: 100_000 }))).filter((r) => r.roomId === roomId).map((r) => r.eventId));
    return { roomId, dave, beforeInvite, whileInvited, afterJoin, heldOnC };
  }

  const bodyOf = (name: string, which: string) => ({ body: `${name}: ${which}` });

  it('joined: nothing from before his join reaches his server or his client, not even ciphertext; everything after it decrypts', async () => {
    const { roomId, dave, beforeInvite, whileInvited, afterJoin, heldOnC } = await lateJoin('joined', 'hv joined');
    const shown = await shownMessages(dave, roomId, (s) => s.size >= 1);
    expect([...shown]).toEqual([[afterJoin, bodyOf('hv joined', 'after dave joined')]]);
    // The residents filtered their backfill answers: C holds none of the earlier events at all.
    const held = await heldOnC();
    for (const id of [...beforeInvite, whileInvited]) expect(held.has(id), id).toBe(false);
    // Paging back again asks nothing new and shows nothing new.
    const page = await dave.createMessagesRequest(roomId, null, 100, Direction.Backward);
    expect(page.chunk.filter((e) => e.type === 'm.room.encrypted').map((e) => e.event_id)).toEqual([afterJoin]);
  }, 120_000);

  it('invited: what was sent while he was invited reaches him and decrypts (the key was shared with invited members); nothing from before', async () => {
    const { roomId, dave, beforeInvite, whileInvited, afterJoin, heldOnC } = await lateJoin('invited', 'hv invited');
    const shown = await shownMessages(dave, roomId, (s) => s.size >= 2 && [...s.values()].every((v) => 'body' in v));
    expect([...shown]).toEqual([
      [whileInvited, bodyOf('hv invited', 'while dave is invited')],
      [afterJoin, bodyOf('hv invited', 'after dave joined')],
    ]);
    const held = await heldOnC();
    for (const id of beforeInvite) expect(held.has(id), id).toBe(false);
  }, 120_000);

  it('shared, inviter without cross-signing: the earlier messages reach him as ciphertext he cannot decrypt ("historical message", no key backup); later ones decrypt', async () => {
    const { roomId, dave, beforeInvite, whileInvited, afterJoin } = await lateJoin('shared', 'hv shared');
    // matrix-js-sdk 43's invite() shares history (MSC4268) only from a device verified by its owner's
    // cross-signing; Alice has none, so Dave's device never receives the earlier Megolm keys.
    const shown = await shownMessages(dave, roomId, (s) => s.size >= 4 && [whileInvited, afterJoin].every((id) => s.get(id) && 'body' in s.get(id)!));
    expect([...shown]).toEqual([
      [beforeInvite[0], { failure: DecryptionFailureCode.HISTORICAL_MESSAGE_NO_KEY_BACKUP }],
      [beforeInvite[1], { failure: DecryptionFailureCode.HISTORICAL_MESSAGE_NO_KEY_BACKUP }],
      [whileInvited, bodyOf('hv shared', 'while dave is invited')],
      [afterJoin, bodyOf('hv shared', 'after dave joined')],
    ]);
    // The history reached his server as events, in Megolm ciphertext only.
    const events = (await dave.createMessagesRequest(roomId, null, 100, Direction.Backward)).chunk;
    for (const id of beforeInvite) expect(events.find((e) => e.event_id === id)?.type).toBe('m.room.encrypted');
  }, 120_000);

  it('shared, inviter cross-signed: her invite shares a key bundle of the history (MSC4268) and he decrypts the earlier messages too', async () => {
    await setUpCrossSigning(alice);
    // The bundle goes only to devices their owner's cross-signing has signed (the SDK's identity-based strategy).
    const { roomId, dave, beforeInvite, whileInvited, afterJoin } = await lateJoin('shared', 'hv shared, bundle', { daveCrossSigned: true });
    const shown = await shownMessages(dave, roomId, (s) => s.size >= 4 && [...s.values()].every((v) => 'body' in v));
    expect([...shown]).toEqual([
      [beforeInvite[0], bodyOf('hv shared, bundle', 'before the invite, from alice')],
      [beforeInvite[1], bodyOf('hv shared, bundle', 'before the invite, from bob')],
      [whileInvited, bodyOf('hv shared, bundle', 'while dave is invited')],
      [afterJoin, bodyOf('hv shared, bundle', 'after dave joined')],
    ]);
    // Dave's client, on C, found Alice's cross-signing identity through keys/query (answered by A over federation).
    expect(await dave.getCrypto()!.userHasCrossSigningKeys(alice.getUserId()!, true)).toBe(true);
  }, 120_000);

  it('no server stores the plaintext of any of these messages', async () => {
    for (const peer of lateNet.peers) {
      const { text } = await storedText(peer.server.storage, '');
      for (const body of sentBodies) expect(text.includes(body), `${body} in the store of ${peer.name.slice(0, 8)}`).toBe(false);
    }
  });
});

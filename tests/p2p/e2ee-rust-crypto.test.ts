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
 *   anywhere (events, outbox, to-device inboxes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventType, MsgType, type MatrixClient } from 'matrix-js-sdk';
import { decryptedBody, memberJoined, startCryptoClient, startE2eeNetwork, storedText, waitFor, type E2eeNetwork } from '../support/e2ee.js';

const ENCRYPTION = { type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } };
const enc = encodeURIComponent;

let net: E2eeNetwork;
const clients: MatrixClient[] = [];
/** Every plaintext body sent, to scan the stores for. */
const sentBodies: string[] = [];

async function send(client: MatrixClient, roomId: string, body: string): Promise<void> {
  sentBodies.push(body);
  await client.sendMessage(roomId, { msgtype: MsgType.Text, body });
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

/**
 * What the relay sees: two homeservers whose only path to each other is the circuit relay (Node libp2p
 * transports, WebSockets on loopback), with a TCP tap in front of the relay recording every byte it
 * receives and sends. Alice and Bob, matrix-js-sdk Rust crypto clients on the two servers, exchange
 * messages in an encrypted room and in a clear one. The tap shows the conversation crossed the relay
 * (far more bytes passed it than the messages hold), and none of those bytes holds the text of any
 * message, encrypted room or clear, nor the rooms' IDs or the users' IDs, while what the protocol sends
 * in the clear (multistream-select's protocol names) is found by the same scan: the relay forwards Noise
 * ciphertext between the two servers, whose Megolm ciphertext travels inside it.
 */
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MsgType, type MatrixClient } from 'matrix-js-sdk';
import { decryptedBody, memberJoined, startCryptoClient, startE2eeNetwork, waitFor, type E2eeNetwork } from '../support/e2ee.js';

const ENCRYPTION = { type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } };

/** A TCP port nobody listens on now. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** Listens on a port of its own and forwards every connection to `targetPort`, keeping every byte either way. */
async function startTap(targetPort: number): Promise<{ port: number; bytes(): Buffer; close(): Promise<void> }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect(targetPort, '127.0.0.1');
    for (const socket of [inbound, outbound]) {
      sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => sockets.delete(socket));
    }
    inbound.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      outbound.write(chunk);
    });
    outbound.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      inbound.write(chunk);
    });
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    bytes: () => Buffer.concat(chunks),
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('the relay between two servers (matrix-js-sdk Rust crypto, libp2p through a circuit relay)', () => {
  let net: E2eeNetwork;
  let tap: Awaited<ReturnType<typeof startTap>>;
  const clients: MatrixClient[] = [];

  beforeAll(async () => {
    const relayPort = await freePort();
    tap = await startTap(relayPort);
    // The relay listens on its own port and tells peers the tap's: all they send it goes through the tap.
    net = await startE2eeNetwork(2, { transport: 'libp2p', relay: { listen: [`/ip4/127.0.0.1/tcp/${relayPort}/ws`], announce: [`/ip4/127.0.0.1/tcp/${tap.port}/ws`] } });
  }, 60_000);

  afterAll(async () => {
    for (const client of clients) client.stopClient();
    await net?.close();
    await tap?.close();
  });

  it('forwards the conversation and can read none of it', async () => {
    const [a, b] = net.peers;
    const alice = await startCryptoClient(a!.server, 'alice');
    const bob = await startCryptoClient(b!.server, 'bob');
    clients.push(alice, bob);
    const sent: string[] = [];
    const before = tap.bytes().length;

    const rooms: string[] = [];
    for (const initialState of [[ENCRYPTION], []]) {
      const { room_id: roomId } = await alice.createRoom({ invite: [bob.getUserId()!], initial_state: initialState });
      await waitFor('Bob to see the invite', () => (bob.getRoom(roomId)?.getMyMembership() === 'invite' ? true : undefined), 60_000);
      await bob.joinRoom(roomId);
      await memberJoined(alice, roomId, bob.getUserId()!);
      rooms.push(roomId);
    }
    const [secretRoom, clearRoom] = rooms as [string, string];
    for (let i = 0; i < 5; i++) {
      for (const [client, roomId, label] of [[alice, secretRoom, 'secret'], [bob, secretRoom, 'secret'], [alice, clearRoom, 'clear']] as const) {
        const body = `${label} line ${i} from ${client === alice ? 'Alice' : 'Bob'}: the quick brown fox ${Math.random().toString(36).slice(2)}`;
        sent.push(body);
        await client.sendMessage(roomId, { msgtype: MsgType.Text, body });
      }
    }
    // Every message reached the other side (decrypted where encrypted): it crossed the relay, the only path.
    for (const body of sent) {
      const reader = body.includes('from Alice') ? bob : alice;
      if (body.startsWith('secret')) await decryptedBody(reader, secretRoom, body);
      else await waitFor(`"${body}" on the other side`, () => (reader.getRoom(clearRoom)?.getLiveTimeline().getEvents().some((e) => e.getContent().body === body) ? true : undefined), 30_000);
    }

    const seen = tap.bytes().subarray(before);
    const carried = sent.reduce((n, body) => n + body.length, 0);
    expect(seen.length, 'bytes through the relay while the two chatted').toBeGreaterThan(carried * 10);
    const asText = seen.toString('latin1');
    // What crosses the wire in the clear is found: the scan reads the real stream (multistream-select's
    // protocol names precede each Noise handshake).
    expect(tap.bytes().toString('latin1')).toContain('/noise');
    for (const needle of [...sent, secretRoom, clearRoom, alice.getUserId()!, bob.getUserId()!, 'm.room.message', 'm.room.encrypted', 'm.megolm.v1.aes-sha2']) {
      expect(asText.includes(needle), `the relay saw "${needle}"`).toBe(false);
    }
  }, 180_000);
});

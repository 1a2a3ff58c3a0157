/**
 * To-device messages to another server's users (Olm room keys, verification) through the persistent outbox,
 * with the real replicators on the memory network: queued while the destination is away, kept across a reload
 * of the sender's replication (a new replicator over the same storage, as a reopened tab), and delivered once,
 * in the order they were sent, when the destination is back.
 */
import { afterAll, expect, it } from 'vitest';
import { startE2eeNetwork, waitFor, type E2eeNetwork } from '../support/e2ee.js';

let net: E2eeNetwork | undefined;
afterAll(async () => {
  await net?.close();
});

it('to-device messages to an offline server are delivered in order, once, after the sender reloads', async () => {
  net = await startE2eeNetwork(2, { firstSeed: 141 });
  const [a, b] = net.peers;
  const alice = await a!.server.register('alice');
  const bob = await b!.server.register('bob');
  const send = async (n: number) => {
    const res = await a!.server.call('PUT', `/_matrix/client/v3/sendToDevice/m.test.ordered/txn${n}`, { messages: { [bob.userId]: { [bob.deviceId]: { n } } } }, alice.accessToken);
    expect(res.status, JSON.stringify(res.json)).toBe(200);
  };
  await net.offline(b!);
  for (let n = 0; n < 5; n++) await send(n);
  // The sender's replication stops and starts again (a reload) while B is still away; more messages follow.
  await net.offline(a!);
  await net.online(a!);
  for (let n = 5; n < 10; n++) await send(n);
  const queued = await a!.server.storage.read((t) => t.outbound.peek(b!.name, 1_000));
  expect(queued.length).toBeGreaterThan(0);
  await net.online(b!);

  const received = await waitFor('all ten messages at B', async () => {
    const sync = await b!.server.call('GET', '/_matrix/client/v3/sync?timeout=0', undefined, bob.accessToken);
    const events = (sync.json.to_device?.events ?? []) as { type: string; sender: string; content: { n: number } }[];
    return events.length >= 10 ? events : undefined;
  });
  expect(received.map((e) => e.content.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(received.every((e) => e.type === 'm.test.ordered' && e.sender === alice.userId)).toBe(true);
  await waitFor("A's outbox to B to empty", async () => ((await a!.server.storage.read((t) => t.outbound.peek(b!.name, 1))).length === 0 ? true : undefined));
}, 60_000);

// The --p2p composition: relay resolution, the --auto-join policy and its account (against the real homeserver,
// invites within one server), and `npm run homeserver -- --p2p` joining a real relay over WebSockets on loopback.
import { createServer } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { allows, createAutoJoiner, parseAutoJoin } from '../../src/node/auto-join.js';
import { hasFederation, metaKeyValueStore, resolveRelays } from '../../src/node/p2p-peer.js';
import { createNodeTransport } from '../../src/p2p/node-node.js';
import { createRelay } from '../../src/p2p/relay.js';
import { createMemoryStorage } from '../../src/storage/memory/index.js';
import { startTestServer } from '../homeserver/harness.js';
import { killLeftoverHomeservers, startHomeserverProcess } from '../support/homeserver-process.js';
import { randomSeed, waitFor } from '../p2p/helpers.js';

afterAll(() => killLeftoverHomeservers());

const RELAY = '/ip4/127.0.0.1/tcp/4001/ws/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN';

describe('relay resolution', () => {
  it('keeps multiaddrs and reads config.json URLs', async () => {
    const fetchFn = (async (url: string) => new Response(JSON.stringify({ relays: [`${RELAY}`, '/ip4/127.0.0.1/tcp/5/ws/p2p/x'] }), { status: url.endsWith('/config.json') ? 200 : 404 })) as unknown as typeof fetch;
    expect(await resolveRelays([RELAY], fetchFn)).toEqual([RELAY]);
    expect(await resolveRelays(['http://127.0.0.1:8080/config.json', RELAY], fetchFn)).toEqual([RELAY, '/ip4/127.0.0.1/tcp/5/ws/p2p/x']);
    expect(await resolveRelays([], fetchFn)).toHaveLength(2); // the default is npm start's config.json
    await expect(resolveRelays(['relay.example'], fetchFn)).rejects.toThrow(/multiaddr/);
    await expect(resolveRelays(['http://127.0.0.1:1/nope'], fetchFn)).rejects.toThrow(/404/);
  });

  it('keeps the peer book in the storage meta store', async () => {
    const storage = createMemoryStorage();
    const store = metaKeyValueStore(storage);
    await store.put('p2p/peer/x', '{"addresses":[],"lastSeen":1}');
    expect(await store.get('p2p/peer/x')).toBe('{"addresses":[],"lastSeen":1}');
    expect(await store.get('p2p/peer/y')).toBeUndefined();
  });

  it('tells a homeserver with the federation half from one without', () => {
    expect(hasFederation({ handleClient() {} })).toBe(false);
    expect(hasFederation({ handleFederation() {}, replication: { receivePdus() {} } })).toBe(true);
  });
});

describe('--auto-join', () => {
  it('parses any, none and user lists', () => {
    expect(parseAutoJoin('none')).toEqual({ kind: 'none' });
    expect(parseAutoJoin('any')).toEqual({ kind: 'any' });
    const list = parseAutoJoin('@a:x, @b:y');
    expect(allows(list, '@a:x')).toBe(true);
    expect(allows(list, '@c:x')).toBe(false);
    expect(allows({ kind: 'none' }, '@a:x')).toBe(false);
    expect(() => parseAutoJoin('alice')).toThrow(/user ID/);
  });

  it('accepts invites from allowed inviters only, as the same account after a restart', async () => {
    const server = await startTestServer({ serverName: 'peer.test', config: { registrationEnabled: true } });
    const alice = await server.register('alice');
    const bob = await server.register('bob');
    const policy = parseAutoJoin(alice.userId);
    let joiner = createAutoJoiner({ handleClient: (r) => server.homeserver.handleClient(r), storage: server.storage, policy, syncTimeoutMs: 200 });
    const peerId = await joiner.start();
    expect(peerId).toBe('@peer:peer.test');
    const fromAlice = (await server.call('POST', '/_matrix/client/v3/createRoom', { invite: [peerId] }, alice.accessToken)).json.room_id;
    const fromBob = (await server.call('POST', '/_matrix/client/v3/createRoom', { invite: [peerId] }, bob.accessToken)).json.room_id;
    await waitFor(() => joiner.joined.has(fromAlice), 10_000, 'auto-join of alice’s room');
    expect(joiner.joined.has(fromBob)).toBe(false);
    joiner.stop();
    // A restart on the same storage is the same account (credentials in the meta store).
    joiner = createAutoJoiner({ handleClient: (r) => server.homeserver.handleClient(r), storage: server.storage, policy, syncTimeoutMs: 200 });
    expect(await joiner.start()).toBe(peerId);
    joiner.stop();
    await new Promise((r) => setTimeout(r, 300)); // the aborted long-poll ends before the storage closes
    await server.close();
  });
});

describe('npm run homeserver -- --p2p', () => {
  it('joins the network through a relay named by a config.json URL and prints its server name', async () => {
    const relay = await createRelay();
    const config = createServer((_, res) => res.end(JSON.stringify({ relays: relay.addresses() })));
    await new Promise<void>((r) => config.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(config.address() as { port: number }).port}/config.json`;
    const probe = await createNodeTransport({ seed: randomSeed(), relays: relay.addresses(), listen: [] });
    try {
      const hs = await startHomeserverProcess(['--memory', '--p2p', '--relay', url]);
      const name = await waitFor(() => /^server name ([0-9a-f]{64})$/m.exec(hs.output())?.[1], 30_000, 'server name');
      // Reachable by name through the relay; this build has no federation API yet, so it answers 503.
      const response = await probe.request(name, { method: 'GET', path: '/_matrix/federation/v1/version' });
      expect([200, 404, 503]).toContain(response.status);
      expect(await hs.stop()).toBe(true);
    } finally {
      await probe.close();
      config.close();
      await relay.stop();
    }
  }, 60_000);

  it('prints the server name at start without --p2p and refuses --relay without it', async () => {
    const hs = await startHomeserverProcess(['--memory']);
    await waitFor(() => /^server name [0-9a-f]{64}$/m.test(hs.output()), 10_000, 'server name');
    expect(await hs.stop()).toBe(true);
    await expect(startHomeserverProcess(['--memory', '--relay', RELAY])).rejects.toThrow(/need --p2p/);
  }, 30_000);
});

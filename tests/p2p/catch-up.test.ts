// Catch-up over real homeservers on the memory network: a server cut off while 1,100 messages are written (more
// than the 1,000 the earlier loop could pull in one chase) gets them all from one anti-entropy exchange, walked back
// in pages (forward from our extremities, as the gap is longer than a page) and handed to the homeserver once each,
// in batches, with progress (fetched / stored / estimated) on the replicator; a gap longer than the per-pull budget
// fails the chase instead of fetching without bound; a walk cut
// short by a lost page keeps its heads and chases them again (seed 19 of the real simulation lost four events so).
import { afterEach, expect, test } from 'vitest';
import type { CatchUpProgress } from '../../src/p2p/catch-up.js';
import { enc, withUsers } from '../homeserver/rooms/helpers.js';
import { createRealSim, type RealSim } from './simulation/real-harness.js';

let sim: RealSim | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

/** Two servers in one room; the second is cut off while the first's user writes `messages` messages. */
async function missedWhileAway(messages: number, catchUp: { pageLimit: number; submitChunk: number; maxEventsPerPull?: number; pagesAhead?: number }) {
  // Gossip mode (more servers than directFanoutMax): messages written while cut off are not queued for the other
  // server, so only catch-up can bring them.
  sim = await createRealSim({ seed: 7, servers: 2, replicator: { directFanoutMax: 1, catchUp } });
  const [s0, s1] = sim.peers as [RealSim['peers'][0], RealSim['peers'][0]];
  const [alice] = await withUsers(s0.server, 'alice');
  const [bob] = await withUsers(s1.server, 'bob');
  const roomId = await alice!.createRoom({ preset: 'public_chat' });
  expect((await bob!.call('POST', `/join/${enc(roomId)}?server_name=${s0.name}`, {})).status).toBe(200);
  await sim.quiesce();
  sim.network.partition([s0.name], [s1.name]);
  for (let i = 0; i < messages; i++) await alice!.send(roomId, { msgtype: 'm.text', body: `away ${i}` });
  await sim.quiesce();
  const submitted: number[] = [];
  const replication = s1.server.homeserver.replication;
  const receive = replication.receivePdus.bind(replication);
  replication.receivePdus = (pdus, origin) => {
    submitted.push(pdus.length);
    return receive(pdus, origin);
  };
  const progress: CatchUpProgress[] = [];
  s1.replicator.events.addEventListener('catchup:progress', (e) => progress.push((e as CustomEvent<CatchUpProgress>).detail));
  return { s0, s1, roomId, submitted, progress };
}

test('a returning server pulls 1,100 missed events in pages, hands each to the homeserver once, and reports progress', async () => {
  const { s0, s1, roomId, submitted, progress } = await missedWhileAway(1_100, { pageLimit: 300, submitChunk: 500 });
  sim!.network.heal();
  await s1.replicator.exchange(s0.name);
  await sim!.quiesce();

  expect(await sim!.eventIds(s1, roomId)).toEqual(await sim!.eventIds(s0, roomId));
  expect(await sim!.state(s1, roomId)).toEqual(await sim!.state(s0, roomId));
  // The tip fetched by ID (1 PDU), then the 1,100 events in chunks of at most 500: nothing resubmitted.
  const pulled = submitted.reduce((sum, n) => sum + n, 0);
  expect(pulled).toBeLessThanOrEqual(1_100 + 2);
  expect(Math.max(...submitted)).toBeLessThanOrEqual(500);
  // Progress: an estimate from the depths before anything is fetched, pages fetched, batches stored, then done.
  const running = progress.filter((p) => p.state === 'running' && p.kind === 'antiEntropy');
  expect(running[0]!.estimated).toBeGreaterThanOrEqual(1_099);
  expect(running[0]!.estimated).toBeLessThanOrEqual(1_101);
  const fetched = running.map((p) => p.fetched);
  expect(fetched).toEqual([...fetched].sort((x, y) => x - y));
  expect(Math.max(...fetched)).toBeGreaterThanOrEqual(1_099);
  expect(Math.max(...running.map((p) => p.stored))).toBeGreaterThanOrEqual(1_099);
  expect(progress.at(-1)!.state).toBe('done');
  expect(s1.replicator.catchUpProgress()).toEqual([]);
}, 120_000);

test('a gap longer than the per-pull budget fails that chase (nothing fetched past the budget); paged forward, each chase stores its part', async () => {
  const { s0, s1, roomId, progress } = await missedWhileAway(300, { pageLimit: 100, submitChunk: 100, maxEventsPerPull: 150 });
  const before = (await sim!.eventIds(s1, roomId)).length;
  sim!.network.heal();
  await s1.replicator.exchange(s0.name);
  await sim!.quiesce();
  const fetched = Math.max(...progress.filter((p) => p.kind === 'antiEntropy').map((p) => p.fetched));
  expect(fetched).toBeLessThanOrEqual(150);
  expect(progress.some((p) => p.kind === 'antiEntropy' && p.state === 'failed')).toBe(true);
  // The gap is longer than a page, so forward pages came first: the oldest 150 events, whose parents are here, were
  // stored by the chase that failed; its heads, kept, were chased again after the exchange and found the rest a
  // budget's length away.
  expect((await sim!.eventIds(s1, roomId)).length).toBe(before + 300);
  expect(await sim!.eventIds(s1, roomId)).toEqual(await sim!.eventIds(s0, roomId));
}, 120_000);

test('forward pages are asked ahead of slow writes, never more than pagesAhead beyond the page being written', async () => {
  const { s0, s1, roomId } = await missedWhileAway(600, { pageLimit: 100, submitChunk: 100, pagesAhead: 3 });
  let asked = 0;
  let begun = 0;
  const ahead: number[] = [];
  const request = s1.transport.request.bind(s1.transport);
  s1.transport.request = (server, req, options) => {
    if (req.path.startsWith('/_matrix/federation/unstable/org.hometab/forward/')) ahead.push(++asked - begun);
    return request(server, req, options);
  };
  const replication = s1.server.homeserver.replication;
  const receive = replication.receivePdus.bind(replication);
  replication.receivePdus = async (pdus, origin) => {
    if (pdus.length < 100) return receive(pdus, origin);
    begun++;
    // A slow write: it waits until five more pages were asked for (which the bound must not allow) or 300 ms.
    const until = Date.now() + 300;
    while (asked < begun + 5 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 5));
    return receive(pdus, origin);
  };
  sim!.network.heal();
  await s1.replicator.exchange(s0.name);
  await sim!.quiesce();

  expect(await sim!.eventIds(s1, roomId)).toEqual(await sim!.eventIds(s0, roomId));
  expect(asked).toBeGreaterThanOrEqual(6);
  // Pages were asked for while earlier ones were still being written, but never more than three ahead.
  expect(Math.max(...ahead)).toBeGreaterThanOrEqual(2);
  expect(Math.max(...ahead)).toBeLessThanOrEqual(3);
}, 120_000);

test('an anti-entropy walk cut short by a lost page keeps its heads and chases them again after the exchange', async () => {
  // Seed 19 of the real simulation: the joining server learned of another server's tips (soft-failed elsewhere, so no
  // third server named them) by anti-entropy, its get_missing_events page timed out, and the heads were forgotten:
  // no later exchange brought them. Here every page asked while the exchange runs is lost the same way (the exchange
  // heal starts from the other side included), so only a chase after it can bring the events.
  const { s0, s1, roomId } = await missedWhileAway(5, { pageLimit: 100, submitChunk: 100 });
  const pages = losePagesOf(s1);
  sim!.network.heal();
  await s1.replicator.exchange(s0.name);
  pages.losing = false;
  await sim!.quiesce();

  expect(pages.lost).toBeGreaterThan(0);
  expect(await sim!.eventIds(s1, roomId)).toEqual(await sim!.eventIds(s0, roomId));
  expect(await sim!.state(s1, roomId)).toEqual(await sim!.state(s0, roomId));
}, 120_000);

/** Makes `peer`'s get_missing_events requests fail as timed out while `losing` is true. */
function losePagesOf(peer: RealSim['peers'][0]): { losing: boolean; lost: number } {
  const pages = { losing: true, lost: 0 };
  const request = peer.transport.request.bind(peer.transport);
  peer.transport.request = (server, req, options) => {
    if (pages.losing && req.path.startsWith('/_matrix/federation/v1/get_missing_events/')) {
      pages.lost++;
      return Promise.reject(new Error(`POST ${req.path} to ${server}: timed out`));
    }
    return request(server, req, options);
  };
  return pages;
}

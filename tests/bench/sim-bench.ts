/**
 * `npm run bench -- sim`: the simulation at 50 and 200 servers in one room, on
 * the memory network's virtual time (1–10 ms per hop), direct fan-out against
 * gossip. Direct: every server linked to every other, the author's outbox
 * sends one transaction per server. Gossip: each server linked to a ring
 * neighbour and 3 random others (about 8 links, gossipsub's mesh degree is
 * 6–12), the author publishes once and the topic floods hop by hop. Reported
 * per event: messages on all links (requests, responses, gossip hops), the
 * author's own messages, and the virtual time until the median and the last
 * server stored it. The fake homeserver port (tests/p2p/support) stands in for
 * the real one, so these figures are the replication layer's, not the
 * receive checks'.
 */
import { createSim } from '../p2p/simulation/harness.js';
import type { BenchRow } from './report.js';

interface Figures {
  messagesPerEvent: number;
  authorMessagesPerEvent: number;
  p50Ms: number;
  maxMs: number;
}

async function measure(servers: number, mode: 'direct' | 'gossip', events: number, seed = 42): Promise<Figures> {
  const stored = new Map<string, number[]>();
  const sim = await createSim({
    seed,
    servers,
    network: { minDelayMs: 1, maxDelayMs: 10 },
    replicator: { directFanoutMax: mode === 'direct' ? Number.POSITIVE_INFINITY : 8 },
    onStored: (_server, eventId, now) => stored.get(eventId)?.push(now),
  });
  try {
    const [first, ...rest] = sim.peers;
    const roomId = await first!.homeserver.createRoom();
    for (const peer of rest) {
      if (!(await peer.homeserver.join(roomId, first!.name))) throw new Error(`${peer.name} could not join`);
    }
    await sim.quiesce();
    if (mode === 'gossip') {
      const keep = new Set<string>();
      const key = (a: number, b: number) => (a < b ? `${a}-${b}` : `${b}-${a}`);
      for (let i = 0; i < servers; i++) {
        keep.add(key(i, (i + 1) % servers));
        for (let k = 0; k < 3; k++) keep.add(key(i, Math.floor(sim.random() * servers)));
      }
      for (let i = 0; i < servers; i++) for (let j = i + 1; j < servers; j++) if (!keep.has(key(i, j))) sim.network.disconnect(`s${i}`, `s${j}`);
    }
    for (const p of sim.peers) await p.replicator.refreshRooms();
    await sim.quiesce();
    let messages = 0;
    let authorMessages = 0;
    const delays: number[] = [];
    const lasts: number[] = [];
    for (let e = 0; e < events; e++) {
      const author = sim.peers[Math.floor(sim.random() * servers)]!;
      let requests = 0;
      let publishes = 0;
      const request = author.transport.request.bind(author.transport);
      const publish = author.transport.publish.bind(author.transport);
      author.transport.request = (...args) => (requests++, request(...args));
      author.transport.publish = (...args) => (publishes++, publish(...args));
      const before = sim.network.stats.sent;
      const start = sim.network.now;
      const times: number[] = [];
      const sent = await author.homeserver.send(roomId, 'm.room.message', { body: `bench ${e}` });
      stored.set(sent.event_id, times);
      await sim.quiesce();
      author.transport.request = request;
      author.transport.publish = publish;
      messages += sim.network.stats.sent - before;
      authorMessages += requests * 2 + publishes * author.transport.peers().length;
      const got = times.map((t) => t - start).sort((a, b) => a - b);
      if (got.length < servers - 1) throw new Error(`${mode} ${servers}: event reached ${got.length} of ${servers - 1} servers`);
      delays.push(got[Math.floor(got.length / 2)]!);
      lasts.push(got[got.length - 1]!);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    return { messagesPerEvent: messages / events, authorMessagesPerEvent: authorMessages / events, p50Ms: median(delays), maxMs: Math.max(...lasts) };
  } finally {
    await sim.close();
  }
}

export async function runSimBench(sizes: number[] = [50, 200], events = 10): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const servers of sizes) {
    const direct = await measure(servers, 'direct', events);
    const gossip = await measure(servers, 'gossip', events);
    const where = `sim ${servers} servers`;
    rows.push(
      { where, figure: 'messages on all links per event, direct', value: direct.messagesPerEvent, unit: 'msgs', limit: { label: '2 × (servers − 1)', value: 2 * (servers - 1), unit: 'msgs' } },
      { where, figure: 'messages on all links per event, gossip', value: gossip.messagesPerEvent, unit: 'msgs' },
      { where, figure: "author's messages per event, direct", value: direct.authorMessagesPerEvent, unit: 'msgs' },
      { where, figure: "author's messages per event, gossip", value: gossip.authorMessagesPerEvent, unit: 'msgs', note: 'bounded by the author’s links, not the room size' },
      { where, figure: 'delivery, median server, direct', value: direct.p50Ms, unit: 'virtual ms', limit: { label: 'one hop', value: 10, unit: 'ms max' } },
      { where, figure: 'delivery, last server, direct', value: direct.maxMs, unit: 'virtual ms' },
      { where, figure: 'delivery, median server, gossip', value: gossip.p50Ms, unit: 'virtual ms' },
      { where, figure: 'delivery, last server, gossip', value: gossip.maxMs, unit: 'virtual ms' },
    );
  }
  return rows;
}

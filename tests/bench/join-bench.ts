/**
 * Joining a big room, in Node with two in-process homeservers (memory
 * storage, federation requests handed straight to the other server's
 * handleFederation as tests/support/federation.ts wires them: no network, so
 * the figure is the homeservers' own cost; a browser over IndexedDB and WebRTC
 * pays more, see the catch-up row). Server A holds a public room with 1,000
 * joined members and 10,000 events; a user of server B joins it by room ID
 * through A (make_join, send_join: the room's state and auth chain, every
 * event's signature checked) and the clock stops when the room is usable:
 * B's /sync shows it joined with all members and its latest messages, and a
 * message sent from B has been accepted by A.
 */
import { enc } from '../homeserver/rooms/helpers.js';
import { startFederation } from '../support/federation.js';
import { NO_RATE_LIMITS } from '../../src/homeserver/index.js';
import type { BenchRow } from './report.js';

export interface JoinBenchOptions {
  members?: number;
  events?: number;
}

export async function runJoinBench(options: JoinBenchOptions = {}): Promise<BenchRow[]> {
  const members = options.members ?? 1_000;
  const events = options.events ?? 10_000;
  const net = await startFederation(2, { config: { rateLimits: NO_RATE_LIMITS } });
  try {
    const [a, b] = net.servers as [(typeof net.servers)[0], (typeof net.servers)[0]];
    const owner = await a.register('owner');
    const created = await a.call('POST', '/_matrix/client/v3/createRoom', { preset: 'public_chat', name: 'big room' }, owner.accessToken);
    if (created.status !== 200) throw new Error(`createRoom: ${JSON.stringify(created.json)}`);
    const roomId = created.json.room_id as string;
    const t0 = performance.now();
    for (let i = 1; i < members; i++) {
      const r = await a.call('POST', '/_matrix/client/v3/register', { username: `member${i}`, auth: { type: 'm.login.dummy' } });
      if (r.status !== 200) throw new Error(`register: ${JSON.stringify(r.json)}`);
      const j = await a.call('POST', `/_matrix/client/v3/join/${enc(roomId)}`, {}, r.json.access_token);
      if (j.status !== 200) throw new Error(`join: ${JSON.stringify(j.json)}`);
    }
    // Whatever the room has so far (create, power levels, join rules, members...) counts toward `events`.
    const stateEvents = members + 6;
    for (let i = 0; i < events - stateEvents; i++) {
      const s = await a.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/b${i}`, { msgtype: 'm.text', body: `message ${i}` }, owner.accessToken);
      if (s.status !== 200) throw new Error(`send: ${JSON.stringify(s.json)}`);
    }
    const fixtureSeconds = (performance.now() - t0) / 1000;

    const newcomer = await b.register('newcomer');
    const start = performance.now();
    const joined = await b.call('POST', `/_matrix/client/v3/join/${enc(roomId)}?server_name=${a.serverName}`, {}, newcomer.accessToken);
    if (joined.status !== 200) throw new Error(`join over federation: ${joined.status} ${JSON.stringify(joined.json)}`);
    const joinMs = performance.now() - start;
    const sync = await b.call('GET', '/_matrix/client/v3/sync?timeout=0', undefined, newcomer.accessToken);
    const room = sync.json.rooms?.join?.[roomId];
    const memberCount = room?.summary?.['m.joined_member_count'];
    const membersSeen = (await b.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/joined_members`, undefined, newcomer.accessToken)).json.joined;
    if (!room || Object.keys(membersSeen ?? {}).length !== members + 1) {
      throw new Error(`bench: after joining, B sees ${Object.keys(membersSeen ?? {}).length} members (summary ${memberCount})`);
    }
    const history = await b.call('GET', `/_matrix/client/v3/rooms/${enc(roomId)}/messages?dir=b&limit=20`, undefined, newcomer.accessToken);
    if (history.status !== 200 || history.json.chunk.length === 0) throw new Error(`bench: no history after the join: ${JSON.stringify(history.json).slice(0, 300)}`);
    const sent = await b.call('PUT', `/_matrix/client/v3/rooms/${enc(roomId)}/send/m.room.message/hello`, { msgtype: 'm.text', body: 'hello big room' }, newcomer.accessToken);
    if (sent.status !== 200) throw new Error(`send after join: ${JSON.stringify(sent.json)}`);
    await net.flush();
    if (!(await a.storage.read((t) => t.events.has(sent.json.event_id)))) throw new Error('bench: A did not accept the newcomer’s message');
    const usableMs = performance.now() - start;
    return [
      {
        where: 'node',
        figure: `join a room of ${members.toLocaleString('en-US')} members and ${events.toLocaleString('en-US')} events: POST /join returns (in-process servers, memory storage)`,
        value: joinMs,
        unit: 'ms',
        note: `fixture built in ${fixtureSeconds.toFixed(1)} s`,
      },
      {
        where: 'node',
        figure: '… until usable (/sync shows it, all members listed, history readable, first message accepted by the other server)',
        value: usableMs,
        unit: 'ms',
      },
    ];
  } finally {
    await net.close();
  }
}

// Whole Hometab peers in real Chromium (src/app/boot-peer.ts in each page: IndexedDB profile, identity, homeserver,
// browser libp2p + BroadcastChannel, replicator), users acting through each homeserver's client-server API.
// 1. Three browsers with their own profile directories connect through a Node relay, go direct over WebRTC,
//    invite each other across servers, join and chat; the relay stops and the direct links keep carrying messages;
//    one browser closes while the others chat, the author closes too, and the returning browser (same profile
//    directory, so same IndexedDB and identity) catches up from the peer that is not the author.
// 2. Two pages of one browser context (two profiles) replicate a room over BroadcastChannel with no relay at all.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumAvailable, launchChromium, launchPersistentChromium } from '../support/chromium.js';
import { createRelay, type Relay } from '../../src/p2p/relay.js';
import type { ScriptServer } from './browser-support.js';
import { call, directTo, servePeerEntry, until } from './peer-pages.js';

const bodies = (list: Array<[string, string, string]>) => list.map((m) => m[1]);
const hasAll = (want: string[]) => (list: Array<[string, string, string]>) => want.every((b) => bodies(list).includes(b));

describe.skipIf(!chromiumAvailable() && !process.env.CI)('replication between Hometab peers in Chromium', () => {
  let server: ScriptServer;

  beforeAll(async () => {
    server = await servePeerEntry();
  }, 120_000);

  afterAll(async () => {
    await server?.close();
  });

  it('three browsers: direct WebRTC links, the relay stops, a returning browser catches up from a non-author', async () => {
    const relaySeed = randomBytes(32);
    let relay: Relay | undefined = await createRelay({ seed: relaySeed });
    const relays = relay.addresses();
    const port = /\/tcp\/(\d+)\//.exec(relays[0]!)![1];
    const dirs = await Promise.all([0, 1, 2].map((i) => mkdtemp(join(tmpdir(), `hometab-profile-${i}-`))));
    const contexts: BrowserContext[] = [];
    const open = async (i: number): Promise<Page> => {
      const context = await launchPersistentChromium(dirs[i]!);
      contexts.push(context);
      return server.open(context);
    };
    const boot = (page: Page, profile: string) => call(page, 'boot', { profile, relays, antiEntropyIntervalMs: 2_000 });
    try {
      const [pa, pb] = [await open(0), await open(1)];
      let pc = await open(2);
      const [a, b, c] = [await boot(pa, 'a'), await boot(pb, 'b'), await boot(pc, 'c')];
      for (const p of [pa, pb, pc]) await until('relay reservation', () => call(p, 'reachable'), (v) => v);

      const alice = await call(pa, 'user', 'alice');
      const bob = await call(pb, 'user', 'bob');
      const carol = await call(pc, 'user', 'carol');
      expect(alice.endsWith(`:${a}`) && bob.endsWith(`:${b}`) && carol.endsWith(`:${c}`)).toBe(true);

      // Invite across servers (the invitees' servers countersign over the network), join through the inviter.
      const roomId = await call(pa, 'createRoom', alice);
      await call(pa, 'invite', alice, roomId, bob);
      await call(pa, 'invite', alice, roomId, carol);
      await until('invite on b', () => call(pb, 'invites', bob), (v) => v.includes(roomId));
      await until('invite on c', () => call(pc, 'invites', carol), (v) => v.includes(roomId));
      await call(pb, 'join', bob, roomId, [a]);
      await call(pc, 'join', carol, roomId, [a]);
      for (const [p, u] of [[pa, alice], [pb, bob], [pc, carol]] as const) {
        await until('three members everywhere', () => call(p, 'members', u, roomId), (v) => v.length === 3);
      }

      // Every pair ends up on a direct WebRTC link (the relay only signalled).
      await until('a direct to b and c', () => call(pa, 'libp2pPeers'), directTo(b, c));
      await until('b direct to a and c', () => call(pb, 'libp2pPeers'), directTo(a, c));
      await until('c direct to a and b', () => call(pc, 'libp2pPeers'), directTo(a, b));

      await call(pa, 'send', alice, roomId, 'hello from alice');
      await call(pb, 'send', bob, roomId, 'hello from bob');
      await call(pc, 'send', carol, roomId, 'hello from carol');
      const hellos = ['hello from alice', 'hello from bob', 'hello from carol'];
      for (const [p, u] of [[pa, alice], [pb, bob], [pc, carol]] as const) await until('hellos everywhere', () => call(p, 'messages', u, roomId), hasAll(hellos));
      // The links that carried them are still the direct ones.
      expect(await call(pa, 'peers')).toEqual(expect.arrayContaining([{ server: b, direct: true, via: 'webrtc' }, { server: c, direct: true, via: 'webrtc' }]));

      // The relay goes away: the direct links keep carrying messages both ways.
      await relay.stop();
      relay = undefined;
      await call(pb, 'send', bob, roomId, 'bob, relay gone');
      await call(pc, 'send', carol, roomId, 'carol, relay gone');
      await call(pa, 'send', alice, roomId, 'alice, relay gone');
      const noRelay = ['bob, relay gone', 'carol, relay gone', 'alice, relay gone'];
      for (const [p, u] of [[pa, alice], [pb, bob], [pc, carol]] as const) await until('messages without the relay', () => call(p, 'messages', u, roomId), hasAll(noRelay));
      for (const p of [pa, pb, pc]) expect((await call(p, 'libp2pPeers')).every((l) => l.direct && l.via === 'webrtc')).toBe(true);

      // The relay comes back (same key and port) so that a returning tab can find the others by name.
      relay = await createRelay({ seed: relaySeed, listen: [`/ip4/127.0.0.1/tcp/${port}/ws`] });
      await until('b holds a reservation again', () => call(pb, 'reachable'), (v) => v, 60_000);

      // Carol's browser closes; alice and bob keep chatting.
      await call(pc, 'close');
      await contexts[2]!.close();
      const missed = ['alice 1 while carol is away', 'alice 2 while carol is away', 'alice 3 while carol is away'];
      for (const body of missed) await call(pa, 'send', alice, roomId, body);
      await call(pb, 'send', bob, roomId, 'bob while carol is away');
      missed.push('bob while carol is away');
      await until('a and b in step', () => call(pb, 'messages', bob, roomId), hasAll(missed));
      await until('a and b in step', () => call(pa, 'messages', alice, roomId), hasAll(missed));
      // The author of most of what carol missed goes away before she returns.
      await call(pa, 'close');
      await contexts[0]!.close();

      // Carol's browser returns on the same profile directory: same database, same identity, same server.
      pc = await open(2);
      expect(await boot(pc, 'c')).toBe(c);
      expect(await call(pc, 'user', 'carol')).toBe(carol);
      await until('carol caught up', () => call(pc, 'messages', carol, roomId), hasAll(missed), 60_000);
      const fromWhom = new Set((await call(pc, 'catchUpLog')).filter((p) => p.state !== 'failed' && p.fetched > 0).map((p) => p.peer));
      expect(fromWhom.has(b)).toBe(true);
      expect(fromWhom.has(a)).toBe(false);
      // Carol and bob hold the same timeline.
      const onC = await call(pc, 'messages', carol, roomId);
      const onB = await call(pb, 'messages', bob, roomId);
      expect(onC.map((m) => m[2]).sort()).toEqual(onB.map((m) => m[2]).sort());
      // And she can talk again, to bob.
      await call(pc, 'send', carol, roomId, 'carol is back');
      await until('bob hears carol', () => call(pb, 'messages', bob, roomId), hasAll(['carol is back']));
      await Promise.all([call(pb, 'close'), call(pc, 'close')]);
    } finally {
      for (const context of contexts) await context.close().catch(() => {});
      await relay?.stop().catch(() => {});
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    }
  }, 240_000);

  it('two pages of one browser replicate a room over BroadcastChannel with no relay running', async () => {
    const browser: Browser = await launchChromium();
    try {
      const context = await browser.newContext();
      const [p1, p2] = [await server.open(context), await server.open(context)];
      const channel = `hometab-test-${Date.now()}`;
      const s1 = await call(p1, 'boot', { profile: 'one', channel });
      const s2 = await call(p2, 'boot', { profile: 'two', channel });
      await until('pages see each other', () => call(p1, 'peers'), (v) => v.some((p) => p.server === s2));
      expect(await call(p1, 'peers')).toEqual([{ server: s2, direct: true, via: 'broadcast-channel' }]);
      expect(await call(p2, 'peers')).toEqual([{ server: s1, direct: true, via: 'broadcast-channel' }]);

      const ann = await call(p1, 'user', 'ann');
      const ben = await call(p2, 'user', 'ben');
      const roomId = await call(p1, 'createRoom', ann);
      await call(p1, 'invite', ann, roomId, ben);
      await until('invite over the channel', () => call(p2, 'invites', ben), (v) => v.includes(roomId));
      await call(p2, 'join', ben, roomId, [s1]);
      await until('ben joined, seen by ann', () => call(p1, 'members', ann, roomId), (v) => v.includes(ben));
      await call(p1, 'send', ann, roomId, 'hi ben');
      await call(p2, 'send', ben, roomId, 'hi ann');
      for (const [p, u] of [[p1, ann], [p2, ben]] as const) await until('both messages on both pages', () => call(p, 'messages', u, roomId), hasAll(['hi ben', 'hi ann']));
      const t1 = (await call(p1, 'messages', ann, roomId)).map((m) => m[2]);
      const t2 = (await call(p2, 'messages', ben, roomId)).map((m) => m[2]);
      expect(t1.sort()).toEqual(t2.sort());
      await Promise.all([call(p1, 'close'), call(p2, 'close')]);
    } finally {
      await browser.close();
    }
  }, 120_000);
});

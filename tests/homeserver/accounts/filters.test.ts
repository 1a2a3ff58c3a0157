/**
 * Stored filters over HTTP (POST/GET /user/{userId}/filter and /sync?filter=<id>):
 * one grammar for upload and /sync, so no accepted filter wedges /sync; what is
 * stored is the normalised form; a filter stored by an older version that no
 * longer parses falls back to the default filter; filter IDs are bounded and
 * belong to their user.
 */
import { readFileSync } from 'node:fs';
import { Filter } from 'matrix-js-sdk/lib/filter.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { JsonObject } from '../../../src/core/index.js';
import type { TestServer } from '../harness.js';
import { accountsServer, V3 } from './helpers.js';

type Account = { userId: string; accessToken: string; deviceId: string };

const INVALID_FILTERS: { why: string; filter: unknown; field: string }[] = JSON.parse(
  readFileSync(new URL('../sync/fixtures/invalid-filters.json', import.meta.url), 'utf8'),
);
const ABSURD_IDS: { why: string; segment: string; errcode: string }[] = JSON.parse(
  readFileSync(new URL('./fixtures/absurd-filter-ids.json', import.meta.url), 'utf8'),
);

let server: TestServer;
let alice: Account;
let bob: Account;
let roomId: string;

const filterPath = (user: Account) => `${V3}/user/${encodeURIComponent(user.userId)}/filter`;
const sync = (user: Account, filter: string) => server.call('GET', `${V3}/sync?filter=${encodeURIComponent(filter)}`, undefined, user.accessToken);
const countFilters = async (user: Account) => {
  let n = 0;
  // IDs are a counter shared by all users: probe the first hundred.
  for (let id = 0; id < 100; id++) if (await server.storage.read((txn) => txn.filters.get(user.userId, String(id)))) n++;
  return n;
};

beforeAll(async () => {
  server = await accountsServer();
  alice = await server.register('alice', 'pw');
  bob = await server.register('bob', 'pw');
  const created = await server.call('POST', `${V3}/createRoom`, { name: 'twelve messages' }, alice.accessToken);
  roomId = created.json.room_id;
  for (let i = 0; i < 12; i++) {
    await server.call('PUT', `${V3}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/t${i}`, { msgtype: 'm.text', body: `m${i}` }, alice.accessToken);
  }
});
afterAll(async () => {
  await server.close();
});

describe('one grammar for upload and /sync', () => {
  it('the stuck filter: a sender that is no user ID is refused at upload, so /sync can never be wedged by it', async () => {
    const before = await countFilters(alice);
    const upload = await server.call('POST', filterPath(alice), { room: { timeline: { senders: ['@bad'] } } }, alice.accessToken);
    expect([upload.status, upload.json.errcode, upload.json.error]).toEqual([400, 'M_BAD_JSON', 'Invalid filter: room.timeline.senders must contain only user IDs']);
    expect(await countFilters(alice)).toBe(before);
  });

  it('every filter the grammar refuses is refused alike at upload and inline on /sync, naming the field', async () => {
    for (const { why, filter, field } of INVALID_FILTERS) {
      const upload = await server.call('POST', filterPath(alice), filter, alice.accessToken);
      // A body that is not an object is the JSON ingress's to refuse (M_NOT_JSON); every object reaches the grammar.
      if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) {
        expect({ why, status: upload.status }).toEqual({ why, status: 400 });
        continue;
      }
      expect({ why, status: upload.status, errcode: upload.json.errcode, names: String(upload.json.error).startsWith(`Invalid filter: ${field} `) }).toEqual({
        why,
        status: 400,
        errcode: 'M_BAD_JSON',
        names: true,
      });
      const inline = await sync(alice, JSON.stringify(filter));
      expect({ why, status: inline.status, errcode: inline.json.errcode, error: inline.json.error }).toEqual({ why, status: 400, errcode: 'M_BAD_JSON', error: upload.json.error });
    }
  });

  it('a filter past a bound is refused at upload naming the field (40,000 wildcard not_types)', async () => {
    // 40,000 entries pass no JSON ingress (10,000 elements per array); 101 reach the filter grammar's own bound.
    const notTypes = Array.from({ length: 40_000 }, (_, i) => `*${i}*`);
    const upload = await server.call('POST', filterPath(alice), { room: { timeline: { not_types: notTypes } } }, alice.accessToken);
    expect([upload.status, upload.json.errcode, upload.json.error]).toEqual([413, 'M_TOO_LARGE', "'room.timeline.not_types' has more than 10000 elements"]);
    const justOver = await server.call('POST', filterPath(alice), { room: { timeline: { not_types: notTypes.slice(0, 101) } } }, alice.accessToken);
    expect([justOver.status, justOver.json.errcode, justOver.json.error]).toEqual([400, 'M_BAD_JSON', 'Invalid filter: room.timeline.not_types must have at most 100 entries']);
  });

  it('stores the normalised form: GET gives back what /sync applies, unknown keys kept', async () => {
    const upload = await server.call('POST', filterPath(alice), { room: { timeline: { limit: 5000.5, 'org.example': [1] } }, 'org.example.top': true }, alice.accessToken);
    expect(upload.status).toBe(200);
    const read = await server.call('GET', `${filterPath(alice)}/${upload.json.filter_id}`, undefined, alice.accessToken);
    expect(read.json).toEqual({ room: { timeline: { limit: 1000, 'org.example': [1] } }, 'org.example.top': true });
    const synced = await sync(alice, upload.json.filter_id);
    expect(synced.status).toBe(200);
    expect(synced.json.rooms.join[roomId].timeline.events.filter((e: { type: string }) => e.type === 'm.room.message')).toHaveLength(12);
  });

  it("matrix-js-sdk's sync filter uploads, comes back equal (so getOrCreateFilter reuses it) and applies", async () => {
    const filter = new Filter(alice.userId);
    filter.setUnreadThreadNotifications(true);
    filter.setLazyLoadMembers(true);
    filter.setTimelineLimit(3);
    const upload = await server.call('POST', filterPath(alice), filter.getDefinition(), alice.accessToken);
    expect(upload.status).toBe(200);
    const read = await server.call('GET', `${filterPath(alice)}/${upload.json.filter_id}`, undefined, alice.accessToken);
    expect(read.json).toEqual(filter.getDefinition());
    const synced = await sync(alice, upload.json.filter_id);
    expect(synced.json.rooms.join[roomId].timeline.events).toHaveLength(3);
  });
});

describe('filters stored by an older version', () => {
  it('a stored filter that no longer parses gives the default filter and one logged warning, never a wedged /sync', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const legacy: JsonObject[] = [
        // Accepted by the old upload grammar (a prefix check), refused by the one /sync applies.
        { room: { timeline: { senders: ['@bad'], limit: 3 } } },
        // Stored before filters were bounded.
        { room: { timeline: { not_types: Array.from({ length: 40_000 }, (_, i) => `*${i}*`), limit: 3 } } },
        { room: { not_rooms: ['!'], timeline: { limit: 3 } } },
      ];
      for (const filter of legacy) {
        const id = await server.storage.write((txn) => txn.filters.create(alice.userId, filter));
        warn.mockClear();
        for (let i = 0; i < 2; i++) {
          const synced = await sync(alice, id);
          expect(synced.status).toBe(200);
          // The default filter: 10 timeline events, not the 3 (or 0) the stored filter asked for.
          expect(synced.json.rooms.join[roomId].timeline.events).toHaveLength(10);
        }
        expect(warn).toHaveBeenCalledTimes(1);
        expect(String(warn.mock.calls[0]![0])).toContain(`stored filter ${id} of ${alice.userId} no longer parses`);
        // GET gives the stored filter back as it is: it is the user's.
        const read = await server.call('GET', `${filterPath(alice)}/${id}`, undefined, alice.accessToken);
        expect([read.status, read.json]).toEqual([200, filter]);
      }
    } finally {
      warn.mockRestore();
    }
  });
});

describe('filter IDs', () => {
  it("another user's filter ID is 404 under one's own user, and 403 under theirs (as Synapse answers)", async () => {
    const bobs = await server.call('POST', filterPath(bob), { room: { timeline: { limit: 2 } } }, bob.accessToken);
    const foreign = await server.call('GET', `${filterPath(alice)}/${bobs.json.filter_id}`, undefined, alice.accessToken);
    expect([foreign.status, foreign.json.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const other = await server.call('GET', `${filterPath(bob)}/${bobs.json.filter_id}`, undefined, alice.accessToken);
    expect([other.status, other.json.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const synced = await sync(alice, bobs.json.filter_id);
    expect([synced.status, synced.json.errcode, synced.json.error]).toEqual([400, 'M_INVALID_PARAM', 'No such filter']);
  });

  it('absurd IDs answer 404 on GET and 400 M_INVALID_PARAM on /sync, never 500 (fixtures/absurd-filter-ids.json)', async () => {
    for (const { why, segment, errcode } of ABSURD_IDS) {
      const id = segment === 'x*100000' ? 'x'.repeat(100_000) : segment;
      const read = await server.call('GET', `${filterPath(alice)}/${id}`, undefined, alice.accessToken);
      expect({ why, status: read.status, errcode: read.json?.errcode }).toEqual({ why, status: 404, errcode });
      const synced = await server.call('GET', `${V3}/sync?filter=${id}`, undefined, alice.accessToken);
      expect({ why, status: synced.status, errcode: synced.json?.errcode }).toEqual({ why, status: 400, errcode: 'M_INVALID_PARAM' });
    }
  });
});

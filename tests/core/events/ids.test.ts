import { describe, expect, it } from 'vitest';
import { decodeBase64 } from '../../../src/core/base64.js';
import { eventIdOf, referenceHash, roomIdFromCreateEvent } from '../../../src/core/events/ids.js';
import { signEvent } from '../../../src/core/events/signing.js';
import { isHashEventId, isHashRoomId } from '../../../src/core/identifiers.js';
import { createSigner } from '../../../src/core/signing.js';
import derived from '../fixtures/derived-events.json';

const EVENT_ID = /^\$[A-Za-z0-9_-]{43}$/;

describe('eventIdOf', () => {
  for (const c of derived.cases) {
    it(`matches the derived v${c.roomVersion} event ID of the ${c.name}`, () => {
      const id = eventIdOf(c.signed, c.roomVersion);
      expect(id).toMatch(EVENT_ID);
      expect(isHashEventId(id)).toBe(true);
      expect(id).toBe(c.eventId);
    });
  }

  it('ignores signatures, unsigned, event_id and everything redaction removes', () => {
    const c = derived.cases.find((x) => x.roomVersion === '12' && x.name.startsWith('member'))!;
    const id = eventIdOf(c.signed, '12');
    expect(eventIdOf({ ...c.signed, signatures: {}, unsigned: { age: 1 }, event_id: '$whatever', age_ts: 5 }, '12')).toBe(id);
    expect(eventIdOf({ ...c.signed, content: { ...c.signed.content, displayname: 'Other' } }, '12')).toBe(id);
    expect(eventIdOf({ ...c.signed, origin: 'elsewhere' }, '12')).toBe(id);
    expect(eventIdOf({ ...c.signed, origin: 'elsewhere' }, '10')).not.toBe(eventIdOf(c.signed, '10'));
    expect(eventIdOf({ ...c.signed, hashes: { sha256: 'AAAA' } }, '12')).not.toBe(id);
    expect(eventIdOf({ ...c.signed, content: { ...c.signed.content, membership: 'join' } }, '12')).not.toBe(id);
  });

  it('is stable across calls and equals the URL-safe reference hash', () => {
    const c = derived.cases[0];
    const hash = referenceHash(c.signed, c.roomVersion);
    expect(hash.length).toBe(32);
    expect(eventIdOf(c.signed, c.roomVersion)).toBe('$' + Buffer.from(hash).toString('base64url'));
    expect(eventIdOf(structuredClone(c.signed), c.roomVersion)).toBe(eventIdOf(c.signed, c.roomVersion));
  });
});

describe('roomIdFromCreateEvent', () => {
  const create = derived.cases.find((c) => c.name === 'v12 create event')!;

  it('derives the v12 room ID: "!" and the create event’s reference hash', () => {
    const roomId = roomIdFromCreateEvent(create.signed, '12');
    expect(roomId).toBe(derived.v12RoomId);
    expect(isHashRoomId(roomId)).toBe(true);
    expect(roomId.slice(1)).toBe(eventIdOf(create.signed, '12').slice(1));
  });

  it('derives a fresh room ID for a freshly signed create event', async () => {
    const signer = await createSigner(decodeBase64(derived.seed), 'domain', 'ed25519:1');
    const signed = await signEvent({ ...create.input, origin_server_ts: 1 }, signer, '12');
    const roomId = roomIdFromCreateEvent(signed, '12');
    expect(roomId).toMatch(/^![A-Za-z0-9_-]{43}$/);
    expect(roomId).not.toBe(derived.v12RoomId);
  });

  it('refuses other room versions, other event types and create events with a room_id', () => {
    expect(() => roomIdFromCreateEvent(create.signed, '11')).toThrow(expect.objectContaining({ code: 'UNKNOWN_ROOM_VERSION' }));
    expect(() => roomIdFromCreateEvent(create.signed, '10')).toThrow(expect.objectContaining({ code: 'UNKNOWN_ROOM_VERSION' }));
    expect(() => roomIdFromCreateEvent({ ...create.signed, type: 'm.room.member' }, '12')).toThrow(
      expect.objectContaining({ code: 'MALFORMED_EVENT' }),
    );
    expect(() => roomIdFromCreateEvent({ ...create.signed, room_id: '!x:y' }, '12')).toThrow(
      expect.objectContaining({ code: 'MALFORMED_EVENT' }),
    );
    expect(() => roomIdFromCreateEvent(null as unknown as object, '12')).toThrow(expect.objectContaining({ code: 'MALFORMED_EVENT' }));
  });
});

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoreError } from '../../../src/core/errors.js';
import { validatePdu, MAX_PDU_BYTES } from '../../../src/core/events/validate.js';
import pdus from '../fixtures/pdus.json';

type Json = Record<string, unknown>;
const VERSIONS = ['10', '11', '12'] as const;

function codeOf(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(CoreError);
    return (err as CoreError).code;
  }
}

function withChange(event: Json, change: Json): Json {
  const out = structuredClone(event);
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

describe('validatePdu: well-formed events pass', () => {
  for (const version of VERSIONS) {
    for (const kind of ['create', 'message'] as const) {
      it(`v${version} ${kind}`, () => {
        expect(() => validatePdu(pdus[version][kind], version)).not.toThrow();
      });
    }
  }

  it('accepts historical user IDs, ports and IPv6 server names, and an event_id key', () => {
    const base = pdus['11'].message as Json;
    for (const sender of ['@Alice:domain', '@:domain', '@a:domain:8448', '@a:[::1]:8448', '@a:1.2.3.4', '@ä b:domain']) {
      expect(codeOf(() => validatePdu(withChange(base, { sender }), '11')), sender).toBeUndefined();
    }
    expect(codeOf(() => validatePdu(withChange(base, { event_id: '$abc' }), '11'))).toBeUndefined();
  });
});

describe('validatePdu: malformed events are refused with MALFORMED_EVENT', () => {
  const v11 = pdus['11'].message as Json;
  const cases: [string, Json][] = [
    ['no type', { type: undefined }],
    ['numeric type', { type: 5 }],
    ['long type', { type: 'x'.repeat(256) }],
    ['no sender', { sender: undefined }],
    ['sender without server', { sender: '@alice' }],
    ['sender without sigil', { sender: 'alice:domain' }],
    ['sender with a bad server name', { sender: '@alice:do main' }],
    ['sender with NUL', { sender: '@a\u0000b:domain' }],
    ['sender over 255 bytes', { sender: `@${'a'.repeat(250)}:domain` }],
    ['no content', { content: undefined }],
    ['array content', { content: [] }],
    ['null content', { content: null }],
    ['no origin_server_ts', { origin_server_ts: undefined }],
    ['string origin_server_ts', { origin_server_ts: '1' }],
    ['float origin_server_ts', { origin_server_ts: 1.5 }],
    ['no depth', { depth: undefined }],
    ['negative depth', { depth: -1 }],
    ['no prev_events', { prev_events: undefined }],
    ['prev_events not an array', { prev_events: '$a' }],
    ['prev_events with a non-ID', { prev_events: ['a'] }],
    ['prev_events with a number', { prev_events: [1] }],
    ['too many prev_events', { prev_events: Array.from({ length: 21 }, (_, i) => `$${i}`) }],
    ['no auth_events', { auth_events: undefined }],
    ['too many auth_events', { auth_events: Array.from({ length: 11 }, (_, i) => `$${i}`) }],
    ['state_key not a string', { state_key: 1 }],
    ['state_key over 255 bytes', { state_key: '日'.repeat(86) }],
    ['event_id over 255 bytes', { event_id: '$' + 'a'.repeat(255) }],
    ['no hashes', { hashes: undefined }],
    ['hashes without sha256', { hashes: {} }],
    ['no signatures', { signatures: undefined }],
    ['signatures of a non-object', { signatures: { domain: 'x' } }],
    ['signature not a string', { signatures: { domain: { 'ed25519:1': 1 } } }],
    ['unsigned not an object', { unsigned: 'x' }],
    ['no room_id', { room_id: undefined }],
    ['room_id without server', { room_id: '!room' }],
    ['room_id without sigil', { room_id: 'room:domain' }],
    ['float in content', { content: { n: 0.5 } }],
    ['lone surrogate in content', { content: { s: '\uD800' } }],
  ];
  for (const [name, change] of cases) {
    it(name, () => {
      expect(codeOf(() => validatePdu(withChange(v11, change), '11'))).toBe('MALFORMED_EVENT');
    });
  }

  it('refuses values that are not events at all', () => {
    for (const bad of [null, undefined, 'event', 42, [], [v11], new Map()]) {
      expect(codeOf(() => validatePdu(bad, '11'))).toBe('MALFORMED_EVENT');
    }
  });

  it('refuses deep nesting without overflowing the stack', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    expect(codeOf(() => validatePdu(withChange(v11, { content: deep as Json }), '11'))).toBe('MALFORMED_EVENT');
  });

  it('refuses a top-level redacts that is not a string in v10 only', () => {
    const v10 = pdus['10'].message as Json;
    expect(codeOf(() => validatePdu(withChange(v10, { type: 'm.room.redaction', redacts: 5 }), '10'))).toBe('MALFORMED_EVENT');
    expect(codeOf(() => validatePdu(withChange(v11, { type: 'm.room.redaction', redacts: 5 }), '11'))).toBeUndefined();
  });

  it('throws UNKNOWN_ROOM_VERSION for versions we do not speak', () => {
    expect(codeOf(() => validatePdu(v11, '9'))).toBe('UNKNOWN_ROOM_VERSION');
  });
});

describe('validatePdu: room IDs per room version', () => {
  it('v12: the create event has no room_id; others need a hash room ID', () => {
    const create = pdus['12'].create as Json;
    const message = pdus['12'].message as Json;
    expect(codeOf(() => validatePdu(withChange(create, { room_id: '!room:domain' }), '12'))).toBe('MALFORMED_EVENT');
    expect(codeOf(() => validatePdu(withChange(message, { room_id: undefined }), '12'))).toBe('MALFORMED_EVENT');
    expect(codeOf(() => validatePdu(withChange(message, { room_id: '!room:domain' }), '12'))).toBe('MALFORMED_EVENT');
    expect(codeOf(() => validatePdu(withChange(message, { room_id: '!' + 'A'.repeat(42) }), '12'))).toBe('MALFORMED_EVENT');
  });

  it('v10 and v11: create events need a room_id like any other', () => {
    for (const version of ['10', '11'] as const) {
      expect(codeOf(() => validatePdu(withChange(pdus[version].create as Json, { room_id: undefined }), version))).toBe('MALFORMED_EVENT');
      expect(codeOf(() => validatePdu(pdus['12'].message, version))).toBe('MALFORMED_EVENT');
    }
  });
});

describe('validatePdu: size', () => {
  const v12 = pdus['12'].message as Json;
  const baseSize = new TextEncoder().encode(JSON.stringify(v12)).length; // key order does not change the size

  it('accepts exactly 65536 bytes and refuses one more with TOO_LARGE', () => {
    const pad = (n: number) => withChange(v12, { content: { msgtype: 'm.text', body: 'hello', pad: 'x'.repeat(n) } });
    const fill = MAX_PDU_BYTES - baseSize - ',"pad":""'.length;
    expect(new TextEncoder().encode(JSON.stringify(pad(fill))).length).toBe(MAX_PDU_BYTES);
    expect(codeOf(() => validatePdu(pad(fill), '12'))).toBeUndefined();
    expect(codeOf(() => validatePdu(pad(fill + 1), '12'))).toBe('TOO_LARGE');
  });

  it('counts bytes of UTF-8, not UTF-16 code units', () => {
    const big = withChange(v12, { content: { body: '日'.repeat(22_000) } }); // 66 000 bytes, 22 000 code units
    expect(codeOf(() => validatePdu(big, '12'))).toBe('TOO_LARGE');
  });
});

describe('validatePdu: arbitrary input', () => {
  it('either passes or throws a CoreError, never anything else', () => {
    const base = pdus['12'].message as Json;
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...Object.keys(base), 'x'), fc.anything({ maxDepth: 2 })), (change) => {
        const event = { ...structuredClone(base), ...change };
        try {
          validatePdu(event, '12');
        } catch (err) {
          expect(err).toBeInstanceOf(CoreError);
        }
      }),
    );
  });
});

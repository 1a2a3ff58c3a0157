import { describe, expect, it } from 'vitest';
import { CoreError } from '../../../src/core/errors.js';
import { redactEvent } from '../../../src/core/events/redaction.js';
import table from '../fixtures/redaction.json';

describe('redactEvent: fixture table (spec v9-redactions for 10, v11-redactions for 11 and 12)', () => {
  for (const { name, event, redacted } of table.cases) {
    for (const version of ['10', '11', '12'] as const) {
      it(`v${version}: ${name}`, () => {
        expect(redactEvent(event, version)).toStrictEqual(redacted[version]);
      });
    }
  }
});

describe('redactEvent: behaviour', () => {
  const member = table.cases[1].event;

  it('does not modify its input and shares nothing with it', () => {
    const before = structuredClone(member);
    const out = redactEvent(member, '11') as { content: { third_party_invite: { signed: { mxid: string } } }; prev_events: string[] };
    expect(member).toStrictEqual(before);
    out.content.third_party_invite.signed.mxid = 'changed';
    out.prev_events.push('$more');
    expect(member).toStrictEqual(before);
  });

  it('is idempotent', () => {
    for (const { event } of table.cases) {
      for (const version of ['10', '11', '12']) {
        const once = redactEvent(event, version);
        expect(redactEvent(once, version)).toStrictEqual(once);
      }
    }
  });

  it('keeps `__proto__` keys of create content as data', () => {
    const event = JSON.parse('{"type":"m.room.create","content":{"__proto__":{"x":1},"room_version":"11"}}');
    const out = redactEvent(event, '11') as { content: Record<string, unknown> };
    expect(Object.keys(out.content)).toEqual(['__proto__', 'room_version']);
    expect(Object.getPrototypeOf(out.content)).toBe(Object.prototype);
  });

  it('refuses what is not an event', () => {
    const bad: [unknown, string][] = [
      [null, 'MALFORMED_EVENT'],
      ['event', 'MALFORMED_EVENT'],
      [[], 'MALFORMED_EVENT'],
      [{ content: {} }, 'MALFORMED_EVENT'],
      [{ type: 5, content: {} }, 'MALFORMED_EVENT'],
      [{ type: 'm.room.message', content: [] }, 'MALFORMED_EVENT'],
      [{ type: 'm.room.message', content: 'x' }, 'MALFORMED_EVENT'],
    ];
    for (const [event, code] of bad) {
      expect(() => redactEvent(event as object, '11')).toThrow(CoreError);
      try {
        redactEvent(event as object, '11');
      } catch (err) {
        expect((err as CoreError).code).toBe(code);
      }
    }
    expect(() => redactEvent({ type: 'x', content: {} }, '9')).toThrow(expect.objectContaining({ code: 'UNKNOWN_ROOM_VERSION' }));
  });
});

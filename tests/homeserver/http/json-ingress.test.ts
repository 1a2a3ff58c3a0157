// The JSON ingress as a pure module: the table of bodies in fixtures/json-ingress-cases.json, and the properties
// the table cannot show (no recursion, limits from the caller, query parameters answer like bodies).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MatrixError } from '../../../src/homeserver/http/errors.js';
import { isWellFormedString } from '../../../src/core/index.js';
import { checkJsonValue, DEFAULT_JSON_LIMITS, parseJsonBody, parseJsonParam } from '../../../src/homeserver/http/json-ingress.js';

interface Case {
  name: string;
  text?: string;
  repeat?: { open: string; close: string; times: number; inner?: string; innerTimes?: number };
  generate?: { array?: number; object?: number };
  ok?: boolean;
  error?: [number, string];
}

const { cases } = JSON.parse(readFileSync(new URL('./fixtures/json-ingress-cases.json', import.meta.url), 'utf8')) as { cases: Case[] };

function textOf(c: Case): string {
  if (c.text !== undefined) return c.text;
  if (c.repeat) {
    const r = c.repeat;
    return r.open.repeat(r.times) + (r.inner ?? '').repeat(r.innerTimes ?? 1) + r.close.repeat(r.times);
  }
  if (c.generate?.array !== undefined) return JSON.stringify(Array.from({ length: c.generate.array }, (_, i) => i));
  if (c.generate?.object !== undefined) return JSON.stringify(Object.fromEntries(Array.from({ length: c.generate.object }, (_, i) => [`k${i}`, i])));
  throw new Error(`case ${c.name} has no body`);
}

function outcome(run: () => unknown): 'ok' | [number, string] {
  try {
    run();
    return 'ok';
  } catch (error) {
    if (error instanceof MatrixError) return [error.status, error.errcode];
    throw error;
  }
}

describe('parseJsonBody', () => {
  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const expected = c.ok ? 'ok' : c.error!;
    expect(outcome(() => parseJsonBody(new TextEncoder().encode(textOf(c))))).toEqual(expected);
    // A JSON query parameter answers exactly as a body does.
    expect(outcome(() => parseJsonParam(textOf(c)))).toEqual(expected);
  });

  it('treats an empty body as {}', () => {
    expect(parseJsonBody(new Uint8Array(0))).toEqual({});
  });

  it('refuses bytes that are not UTF-8 (an encoded lone surrogate included) with M_NOT_JSON', () => {
    for (const bytes of [[0x7b, 0xff, 0x7d], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xc3]]) {
      expect(outcome(() => parseJsonBody(new Uint8Array(bytes)))).toEqual([400, 'M_NOT_JSON']);
    }
  });

  it('keeps an own __proto__ key as data and leaves Object.prototype alone', () => {
    const value = parseJsonBody(new TextEncoder().encode('{"__proto__":{"membership":"join"}}')) as Record<string, unknown>;
    expect(Object.keys(value)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).membership).toBeUndefined();
  });

  it('takes its limits from the caller', () => {
    expect(outcome(() => parseJsonParam('[[[1]]]', { maxDepth: 2 }))).toEqual([400, 'M_BAD_JSON']);
    expect(outcome(() => parseJsonParam('[[[1]]]', { maxDepth: 3 }))).toBe('ok');
    expect(outcome(() => parseJsonParam('"abc"', { maxStringLength: 2 }))).toEqual([413, 'M_TOO_LARGE']);
  });

  it('names where in the value a bound was passed, cutting long keys short', () => {
    const messageOf = (text: string, limits = {}) => {
      try {
        parseJsonParam(text, limits);
      } catch (error) {
        return (error as MatrixError).message;
      }
      return undefined;
    };
    expect(messageOf('{"device_keys":{"a":1,"b":2,"c":3}}', { maxObjectKeys: 2 })).toBe("'device_keys' has more than 2 keys");
    expect(messageOf('{"room":{"timeline":{"types":["a","b","c"]}}}', { maxArrayLength: 2 })).toBe("'room.timeline.types' has more than 2 elements");
    expect(messageOf('{"invite":["ok","\\ud800"]}')).toBe("'invite[1]' holds a lone surrogate");
    expect(messageOf('{"a":{"\\udc00":1}}')).toBe("A key in 'a' holds a lone surrogate");
    expect(messageOf(`{"${'k'.repeat(500)}":[1,2,3]}`, { maxArrayLength: 2 })).toBe(`'${'k'.repeat(64)}' has more than 2 elements`);
    expect(messageOf('[1,2,3]', { maxArrayLength: 2 })).toBe('JSON has more than 2 elements');
  });

  it('refuses a megabyte of brackets before parsing it, without overflowing the stack', () => {
    const text = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    expect(outcome(() => parseJsonParam(text))).toEqual([400, 'M_BAD_JSON']);
  });
});

describe('checkJsonValue', () => {
  it('walks a value nested far past the call stack iteratively', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(outcome(() => checkJsonValue(deep))).toEqual([400, 'M_BAD_JSON']);
    expect(outcome(() => checkJsonValue(deep, { maxDepth: 300_000 }))).toBe('ok');
  });

  it('has the documented defaults', () => {
    expect(DEFAULT_JSON_LIMITS).toEqual({ maxDepth: 100, maxArrayLength: 10_000, maxObjectKeys: 10_000, maxStringLength: 65_536 });
  });
});

describe('isWellFormedString (the core rule the ingress applies)', () => {
  it('agrees with the fallback pattern', () => {
    for (const s of ['', 'a', '\ud83d\ude00', '\ud800', '\udc00', 'a\ud800', '\udc00\ud800', '\ud800\ud800\udc00']) {
      const pattern = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
      expect(isWellFormedString(s)).toBe(!pattern.test(s));
    }
  });
});

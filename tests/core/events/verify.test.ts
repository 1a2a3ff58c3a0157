/**
 * verifyEvent: the one-step check of a received event's content hash and its
 * origin's signature, on the derived (cross-checked) events of each version
 * and on tampered copies of them.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  canonicalJsonBytes,
  createSigner,
  decodeBase64,
  ed25519Verify,
  redactEvent,
  sha256,
  signEvent,
  verifyEvent,
  CoreError,
  type Signer,
} from '../../../src/core/index.js';
import derived from '../fixtures/derived-events.json';
import pdus from '../fixtures/pdus.json';

type Json = Record<string, any>;
const seed = decodeBase64(derived.seed);
let publicKey: Uint8Array;
const versions = ['10', '11', '12'] as const;
const signedMessages: Record<string, Json> = {};

beforeAll(async () => {
  const signer = await createSigner(seed, 'domain', 'ed25519:1');
  publicKey = signer.publicKey;
  for (const v of versions) {
    const { hashes: _h, signatures: _s, ...unsignedMessage } = (pdus as Json)[v].message;
    signedMessages[v] = await signEvent(unsignedMessage, signer, v);
  }
});

describe('verifyEvent', () => {
  for (const v of versions) {
    it(`accepts a correctly signed v${v} event`, async () => {
      expect(await verifyEvent(signedMessages[v]!, v, 'domain', 'ed25519:1', publicKey)).toEqual({ contentHashOk: true, signatureOk: true });
    });

    it(`v${v}: changed content breaks the hash but not the signature (content is redacted away)`, async () => {
      const tampered = structuredClone(signedMessages[v]!);
      tampered.content.body = 'something else';
      expect(await verifyEvent(tampered, v, 'domain', 'ed25519:1', publicKey)).toEqual({ contentHashOk: false, signatureOk: true });
    });

    it(`v${v}: a changed sender breaks both`, async () => {
      const tampered = structuredClone(signedMessages[v]!);
      tampered.sender = '@mallory:domain';
      expect(await verifyEvent(tampered, v, 'domain', 'ed25519:1', publicKey)).toEqual({ contentHashOk: false, signatureOk: false });
    });
  }

  it('ignores unsigned', async () => {
    const withUnsigned = { ...signedMessages['12']!, unsigned: { age: 5 } };
    expect(await verifyEvent(withUnsigned, '12', 'domain', 'ed25519:1', publicKey)).toEqual({ contentHashOk: true, signatureOk: true });
  });

  it('rejects the wrong key, the wrong server and a missing signature', async () => {
    const other = await createSigner(new Uint8Array(32).fill(9), 'domain', 'ed25519:1');
    const event = signedMessages['12']!;
    expect((await verifyEvent(event, '12', 'domain', 'ed25519:1', other.publicKey)).signatureOk).toBe(false);
    expect((await verifyEvent(event, '12', 'elsewhere', 'ed25519:1', publicKey)).signatureOk).toBe(false);
    expect((await verifyEvent(event, '12', 'domain', 'ed25519:2', publicKey)).signatureOk).toBe(false);
    const { signatures: _s, ...bare } = event;
    expect(await verifyEvent(bare, '12', 'domain', 'ed25519:1', publicKey)).toEqual({ contentHashOk: true, signatureOk: false });
  });

  it('answers false, never throws, for malformed events', async () => {
    const event = signedMessages['12']!;
    const cases: unknown[] = [
      null,
      [],
      'event',
      { ...event, hashes: { sha256: '***' } },
      { ...event, hashes: 'abc' },
      { ...event, signatures: { domain: { 'ed25519:1': '%%' } } },
      { ...event, content: { n: 1.5 } },
    ];
    for (const bad of cases) {
      const result = await verifyEvent(bad as object, '12', 'domain', 'ed25519:1', publicKey);
      expect(result.contentHashOk && result.signatureOk).toBe(false);
    }
  });

  it('throws a typed error for an unknown room version', async () => {
    await expect(verifyEvent(signedMessages['12']!, '99', 'domain', 'ed25519:1', publicKey)).rejects.toBeInstanceOf(CoreError);
  });
});

/**
 * verifyEvent builds both forms in one pass over the event, straight to bytes;
 * this is the plain definition it must agree with: the content hash over the
 * canonical JSON of the event without `unsigned`, `signatures` and `hashes`,
 * the signature over the redacted event without `signatures` and `unsigned`,
 * and both false when either part meets malformed input.
 */
async function reference(event: Json, v: string, serverName: string, keyId: string, key: Uint8Array) {
  const failed = { contentHashOk: false, signatureOk: false };
  const isObject = (x: unknown): x is Json => typeof x === 'object' && x !== null && !Array.isArray(x);
  try {
    let contentHashOk = false;
    let signatureOk = false;
    const { unsigned: _u, signatures, hashes, ...hashed } = event;
    if (isObject(hashes) && typeof hashes.sha256 === 'string') {
      const expected = Buffer.from(decodeBase64(hashes.sha256)).toString('hex');
      contentHashOk = Buffer.from(sha256(canonicalJsonBytes(hashed))).toString('hex') === expected;
    }
    const bySigner = isObject(signatures) && Object.hasOwn(signatures, serverName) ? signatures[serverName] : undefined;
    const encoded = isObject(bySigner) && Object.hasOwn(bySigner, keyId) ? bySigner[keyId] : undefined;
    if (typeof encoded === 'string') {
      const signature = decodeBase64(encoded);
      const { signatures: _s, unsigned: _u2, ...signedPart } = redactEvent(event, v);
      signatureOk = await ed25519Verify(key, canonicalJsonBytes(signedPart), signature);
    }
    return { contentHashOk, signatureOk };
  } catch (err) {
    if (err instanceof CoreError) return failed;
    throw err;
  }
}

describe('verifyEvent agrees with the plain definition', () => {
  let signer: Signer;
  beforeAll(async () => {
    signer = await createSigner(seed, 'domain', 'ed25519:1');
  });

  const ownKeys = (entries: [string, unknown][]): Json => {
    const obj: Json = {};
    for (const [k, v] of entries) Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
    return obj;
  };
  const text = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('日本', '\u{1F600}', '\uE000', 'a"b\\c\n', '\uD800'));
  const value = fc.oneof(
    { weight: 8, arbitrary: fc.oneof(fc.integer(), text, fc.constantFrom(null, true, -0), fc.jsonValue({ maxDepth: 2 }).map((j) => JSON.parse(JSON.stringify(j).replace(/\d+\.\d+|\d+e[-+]?\d+/gi, '1')))) },
    { weight: 1, arbitrary: fc.constantFrom(1.5, undefined, 2 ** 53) },
  );
  const contentKey = fc.constantFrom('body', 'membership', 'third_party_invite', 'creator', 'redacts', 'join_rule', 'allow', 'users', 'invite', 'history_visibility', 'signed', '__proto__', 'z\uD800');
  const content = fc.oneof(
    { weight: 6, arbitrary: fc.array(fc.tuple(contentKey, fc.oneof(value, fc.record({ signed: value }, { requiredKeys: [] }))), { maxLength: 5 }).map(ownKeys) },
    { weight: 1, arbitrary: fc.constantFrom(undefined, 'text', [], null) },
  );
  const type = fc.constantFrom('m.room.message', 'm.room.create', 'm.room.member', 'm.room.power_levels', 'm.room.join_rules', 'm.room.redaction', 'm.room.history_visibility', 7);
  const topKey = fc.constantFrom('origin', 'membership', 'prev_state', 'state_key', 'redacts', 'event_id', 'unsigned', '\uD800k', '__proto__', 'zzz', 'content', 'hashes', 'signatures');
  const event = fc.record(
    { type, content, sender: fc.constant('@a:domain'), room_id: fc.constant('!r:domain'), depth: fc.nat(100), prev_events: fc.constant(['$p']), auth_events: fc.constant([]) },
    { requiredKeys: ['type', 'sender', 'depth'] },
  );
  const extra = fc.array(fc.tuple(topKey, value), { maxLength: 2 });

  it('on arbitrary (often malformed or tampered) events of every version', async () => {
    await fc.assert(
      fc.asyncProperty(event, extra, extra, fc.constantFrom('10', '11', '12'), fc.boolean(), fc.boolean(), async (base, before, after, v, sign, reverse) => {
        let e: Json = ownKeys([...Object.entries(base), ...before]);
        if (sign) {
          try {
            e = await signEvent(e, signer, v);
          } catch {
            // not signable: verify it as it is
          }
        }
        e = ownKeys(reverse ? [...Object.entries(e), ...after].reverse() : [...Object.entries(e), ...after]);
        const expected = await reference(e, v, 'domain', 'ed25519:1', signer.publicKey);
        expect(await verifyEvent(e, v, 'domain', 'ed25519:1', signer.publicKey)).toEqual(expected);
      }),
      { numRuns: 1500 },
    );
  });

  it('on large events (beyond the reused buffers) and right after them', async () => {
    const big = await signEvent({ type: 'm.room.message', sender: '@a:domain', room_id: '!r:domain', depth: 1, content: { body: 'é'.repeat(700_000) } }, signer, '12');
    expect(await verifyEvent(big, '12', 'domain', 'ed25519:1', signer.publicKey)).toEqual({ contentHashOk: true, signatureOk: true });
    expect(await verifyEvent(signedMessages['12']!, '12', 'domain', 'ed25519:1', signer.publicKey)).toEqual({ contentHashOk: true, signatureOk: true });
  });

  it('on many events verified concurrently', async () => {
    const events = await Promise.all(
      Array.from({ length: 64 }, (_, i) => signEvent({ type: 'm.room.message', sender: '@a:domain', room_id: '!r:domain', depth: i, content: { body: `m${i}`.repeat(i) } }, signer, '11')),
    );
    events[7] = { ...events[7]!, depth: 1000 };
    const results = await Promise.all(events.map((e) => verifyEvent(e, '11', 'domain', 'ed25519:1', signer.publicKey)));
    results.forEach((r, i) => expect(r).toEqual(i === 7 ? { contentHashOk: false, signatureOk: false } : { contentHashOk: true, signatureOk: true }));
  });
});

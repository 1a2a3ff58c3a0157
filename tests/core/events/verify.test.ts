/**
 * verifyEvent: the one-step check of a received event's content hash and its
 * origin's signature, on the derived (cross-checked) events of each version
 * and on tampered copies of them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createSigner, decodeBase64, signEvent, verifyEvent, CoreError } from '../../../src/core/index.js';
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

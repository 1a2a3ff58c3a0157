import { describe, expect, it } from 'vitest';
import { decodeBase64 } from '../../../src/core/base64.js';
import { createEd25519, type Ed25519BackendName } from '../../../src/core/crypto.js';
import { checkContentHash } from '../../../src/core/events/hashing.js';
import { signEvent, verifyEventSignature } from '../../../src/core/events/signing.js';
import { createSigner } from '../../../src/core/signing.js';
import derived from '../fixtures/derived-events.json';
import spec from '../fixtures/spec-signing.json';

const seed = decodeBase64(spec.seed);
const publicKey = decodeBase64(spec.publicKey);

for (const backend of ['webcrypto', 'noble'] as Ed25519BackendName[]) {
  describe(`signEvent (${backend})`, () => {
    const ed25519 = createEd25519({ backend });
    const signer = () => createSigner(seed, spec.serverName, spec.keyId, { ed25519 });

    for (const { name, input, signed } of spec.events) {
      it(`reproduces the spec's signed ${name} exactly with the v10 algorithm`, async () => {
        const out = await signEvent(input, await signer(), '10');
        expect(out).toStrictEqual(signed);
        expect(await verifyEventSignature(signed, '10', 'domain', 'ed25519:1', publicKey, { ed25519 })).toBe(true);
      });

      it(`gives the ${name} the same content hash but a different signature under v11/v12`, async () => {
        for (const version of ['11', '12']) {
          const out = (await signEvent(input, await signer(), version)) as typeof signed;
          expect(out.hashes).toEqual(signed.hashes);
          expect(out.signatures.domain['ed25519:1']).not.toBe(signed.signatures.domain['ed25519:1']);
          expect(await verifyEventSignature(out, version, 'domain', 'ed25519:1', publicKey, { ed25519 })).toBe(true);
          // v10 redaction keeps `origin`, which v11 signatures do not cover.
          expect(await verifyEventSignature(out, '10', 'domain', 'ed25519:1', publicKey, { ed25519 })).toBe(false);
        }
      });
    }

    for (const c of derived.cases) {
      it(`matches the independently derived v${c.roomVersion} vector: ${c.name}`, async () => {
        const out = await signEvent(c.input, await signer(), c.roomVersion);
        expect(out).toStrictEqual(c.signed);
        expect(checkContentHash(out)).toBe(true);
        expect(await verifyEventSignature(c.signed, c.roomVersion, 'domain', 'ed25519:1', publicKey, { ed25519 })).toBe(true);
      });
    }
  });
}

describe('signEvent', () => {
  it('does not modify its input and keeps other servers’ signatures', async () => {
    const signer = await createSigner(seed, 'domain', 'ed25519:1');
    const input = { ...spec.events[0].input, signatures: { other: { 'ed25519:a': 'c2ln' } } };
    const before = structuredClone(input);
    const out = await signEvent(input, signer, '12');
    expect(input).toStrictEqual(before);
    expect(out.signatures).toMatchObject({ other: { 'ed25519:a': 'c2ln' }, domain: { 'ed25519:1': expect.any(String) } });
    expect(out.unsigned).toEqual(input.unsigned);
  });

  it('signs the redacted form: the signature survives redaction of the content', async () => {
    const signer = await createSigner(seed, 'domain', 'ed25519:1');
    const out = await signEvent(spec.events[1].input, signer, '11');
    const redactedContent = { ...out, content: {} };
    expect(await verifyEventSignature(redactedContent, '11', 'domain', 'ed25519:1', publicKey)).toBe(true);
    expect(checkContentHash(redactedContent)).toBe(false);
  });

  it('refuses non-events and non-canonical content', async () => {
    const signer = await createSigner(seed, 'domain', 'ed25519:1');
    await expect(signEvent(null as unknown as object, signer, '12')).rejects.toMatchObject({ code: 'MALFORMED_EVENT' });
    await expect(signEvent({ type: 'x', content: { f: 0.1 } }, signer, '12')).rejects.toMatchObject({ code: 'NOT_CANONICAL' });
    await expect(signEvent({ type: 'x', content: {}, signatures: 'x' }, signer, '12')).rejects.toMatchObject({ code: 'MALFORMED_EVENT' });
    await expect(signEvent({ type: 'x', content: {} }, signer, '99')).rejects.toMatchObject({ code: 'UNKNOWN_ROOM_VERSION' });
  });
});

describe('verifyEventSignature', () => {
  it('is false, never a throw, for events that cannot be redacted', async () => {
    for (const bad of [null, [], { content: {} }, { type: 'x', content: 5 }]) {
      expect(await verifyEventSignature(bad as object, '12', 'domain', 'ed25519:1', publicKey)).toBe(false);
    }
  });
});

import { describe, expect, it } from 'vitest';
import { decodeBase64, encodeBase64 } from '../../src/core/base64.js';
import { createEd25519, type Ed25519BackendName } from '../../src/core/crypto.js';
import { createSigner, signJson, verifyJsonSignature } from '../../src/core/signing.js';
import spec from './fixtures/spec-signing.json';

type Signed = { signatures: Record<string, Record<string, string>> };
const seed = decodeBase64(spec.seed);
const publicKey = decodeBase64(spec.publicKey);

for (const backend of ['webcrypto', 'noble'] as Ed25519BackendName[]) {
  describe(`JSON signing, spec vectors (${backend})`, () => {
    const ed25519 = createEd25519({ backend });

    it('derives the spec public key from the seed', async () => {
      const signer = await createSigner(seed, spec.serverName, spec.keyId, { ed25519 });
      expect(encodeBase64(signer.publicKey)).toBe(spec.publicKey);
      expect(signer.serverName).toBe('domain');
      expect(signer.keyId).toBe('ed25519:1');
    });

    for (const { input, signed } of spec.json) {
      it(`signs ${JSON.stringify(input)} as the spec does, and verifies it`, async () => {
        const signer = await createSigner(seed, spec.serverName, spec.keyId, { ed25519 });
        const out = await signJson(input, signer);
        expect(out).toEqual(signed);
        expect(await verifyJsonSignature(signed, spec.serverName, spec.keyId, publicKey, { ed25519 })).toBe(true);
      });
    }
  });
}

describe('signJson', () => {
  it('keeps other signatures and unsigned, and does not touch its input', async () => {
    const signer = await createSigner(seed, 'domain', 'ed25519:1');
    const input = {
      one: 1,
      signatures: { other: { 'ed25519:x': 'c2ln' }, domain: { 'ed25519:old': 'b2xk' } },
      unsigned: { age: 5 },
    };
    const before = structuredClone(input);
    const out = (await signJson(input, signer)) as unknown as Signed & { unsigned: unknown };
    expect(input).toEqual(before);
    expect(out.unsigned).toBe(input.unsigned);
    expect(out.signatures).toEqual({
      other: { 'ed25519:x': 'c2ln' },
      domain: { 'ed25519:old': 'b2xk', 'ed25519:1': expect.any(String) },
    });
    // Neither signatures nor unsigned are covered: same signature as for {"one":1}.
    const plain = (await signJson({ one: 1 }, signer)) as unknown as Signed;
    expect(out.signatures.domain['ed25519:1']).toBe(plain.signatures.domain['ed25519:1']);
    expect(await verifyJsonSignature(out, 'domain', 'ed25519:1', signer.publicKey)).toBe(true);
  });

  it('refuses non-canonical values', async () => {
    const signer = await createSigner(seed, 'domain', 'ed25519:1');
    await expect(signJson({ x: 1.5 }, signer)).rejects.toMatchObject({ code: 'NOT_CANONICAL' });
    await expect(signJson({ signatures: 'no' }, signer)).rejects.toMatchObject({ code: 'MALFORMED_EVENT' });
  });
});

describe('createSigner', () => {
  it('refuses bad seeds and key IDs', async () => {
    await expect(createSigner(new Uint8Array(31), 'domain', 'ed25519:1')).rejects.toMatchObject({ code: 'BAD_KEY' });
    await expect(createSigner(seed, 'domain', 'rsa:1')).rejects.toMatchObject({ code: 'BAD_KEY' });
    await expect(createSigner(seed, 'domain', 'ed25519:')).rejects.toMatchObject({ code: 'BAD_KEY' });
    await expect(createSigner(seed, '', 'ed25519:1')).rejects.toMatchObject({ code: 'BAD_KEY' });
  });
});

describe('verifyJsonSignature', () => {
  const signed = spec.json[1].signed;

  it('is false, never a throw, for every kind of bad or missing signature', async () => {
    const cases: [string, unknown, string, string, Uint8Array][] = [
      ['other server', signed, 'elsewhere', 'ed25519:1', publicKey],
      ['other key ID', signed, 'domain', 'ed25519:2', publicKey],
      ['unknown algorithm', signed, 'domain', 'curve:1', publicKey],
      ['wrong key', signed, 'domain', 'ed25519:1', new Uint8Array(32).fill(1)],
      ['short key', signed, 'domain', 'ed25519:1', publicKey.slice(1)],
      ['changed data', { ...signed, two: 'Three' }, 'domain', 'ed25519:1', publicKey],
      ['no signatures', { one: 1 }, 'domain', 'ed25519:1', publicKey],
      ['signatures not an object', { one: 1, signatures: [] }, 'domain', 'ed25519:1', publicKey],
      ['signature not a string', { one: 1, signatures: { domain: { 'ed25519:1': 5 } } }, 'domain', 'ed25519:1', publicKey],
      ['bad base64', { one: 1, signatures: { domain: { 'ed25519:1': '!!' } } }, 'domain', 'ed25519:1', publicKey],
      ['short signature', { one: 1, signatures: { domain: { 'ed25519:1': 'AAAA' } } }, 'domain', 'ed25519:1', publicKey],
      ['not canonical', { ...signed, x: 0.5 }, 'domain', 'ed25519:1', publicKey],
      ['not an object', [signed], 'domain', 'ed25519:1', publicKey],
      ['inherited server', { one: 1, signatures: {} }, 'toString', 'ed25519:1', publicKey],
    ];
    for (const [name, value, server, keyId, key] of cases) {
      expect(await verifyJsonSignature(value as object, server, keyId, key), name).toBe(false);
    }
  });

  it('ignores unsigned and accepts a padded or URL-safe signature', async () => {
    const sig = signed.signatures.domain['ed25519:1'];
    expect(await verifyJsonSignature({ ...signed, unsigned: { anything: true } }, 'domain', 'ed25519:1', publicKey)).toBe(true);
    const padded = { ...signed, signatures: { domain: { 'ed25519:1': sig + '==' } } };
    expect(await verifyJsonSignature(padded, 'domain', 'ed25519:1', publicKey)).toBe(true);
    const urlSafe = { ...signed, signatures: { domain: { 'ed25519:1': sig.replace(/\+/g, '-').replace(/\//g, '_') } } };
    expect(await verifyJsonSignature(urlSafe, 'domain', 'ed25519:1', publicKey)).toBe(true);
  });
});

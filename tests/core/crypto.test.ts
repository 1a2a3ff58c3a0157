import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createEd25519,
  defaultEd25519,
  ed25519PublicKey,
  ed25519Sign,
  ed25519Verify,
  setEd25519Backend,
  sha256,
  sha256Async,
  utf8,
  verifyBatch,
  webCryptoHasEd25519,
  type Ed25519BackendName,
} from '../../src/core/crypto.js';
import { CoreError } from '../../src/core/errors.js';
import rfc8032 from './fixtures/rfc8032-ed25519.json';

const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const BACKENDS: Ed25519BackendName[] = ['webcrypto', 'noble'];

describe('sha256 and utf8', () => {
  it('hashes "abc" (FIPS 180-2 example)', () => {
    expect(toHex(sha256(utf8('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
  it('encodes UTF-8', () => {
    expect([...utf8('日')]).toEqual([0xe6, 0x97, 0xa5]);
  });
});

describe('sha256Async', () => {
  it('agrees with sha256 and reads its input before returning', async () => {
    const data = utf8('x'.repeat(1000));
    const expected = toHex(sha256(data));
    const pending = sha256Async(data);
    data.fill(0);
    expect(toHex(await pending)).toBe(expected);
  });
});

describe('Ed25519 platform', () => {
  it('Node 20 WebCrypto has Ed25519, so auto picks it', async () => {
    expect(await webCryptoHasEd25519()).toBe(true);
    expect(await createEd25519().backend()).toBe('webcrypto');
  });
});

for (const backend of BACKENDS) {
  describe(`Ed25519 (${backend})`, () => {
    const ed = createEd25519({ backend });

    for (const v of rfc8032.vectors) {
      it(`RFC 8032 ${v.name}`, async () => {
        expect(toHex(await ed.publicKeyFromSeed(hex(v.secretKey)))).toBe(v.publicKey);
        expect(toHex(await ed.sign(hex(v.secretKey), hex(v.message)))).toBe(v.signature);
        expect(await ed.verify(hex(v.publicKey), hex(v.message), hex(v.signature))).toBe(true);
        const pair = await ed.keyPair(hex(v.secretKey));
        expect(toHex(pair.publicKey)).toBe(v.publicKey);
        expect(toHex(await pair.sign(hex(v.message)))).toBe(v.signature);
      });
    }

    it('rejects a tampered message, key or signature', async () => {
      const v = rfc8032.vectors[1];
      const sig = hex(v.signature);
      expect(await ed.verify(hex(v.publicKey), hex('73'), sig)).toBe(false);
      const badSig = sig.slice();
      badSig[5] ^= 1;
      expect(await ed.verify(hex(v.publicKey), hex(v.message), badSig)).toBe(false);
      expect(await ed.verify(hex(rfc8032.vectors[0].publicKey), hex(v.message), sig)).toBe(false);
    });

    it('returns false, never throws, for wrong lengths and junk', async () => {
      const v = rfc8032.vectors[0];
      const pub = hex(v.publicKey);
      const sig = hex(v.signature);
      const msg = new Uint8Array(0);
      expect(await ed.verify(pub.slice(0, 31), msg, sig)).toBe(false);
      expect(await ed.verify(new Uint8Array(33), msg, sig)).toBe(false);
      expect(await ed.verify(pub, msg, sig.slice(0, 63))).toBe(false);
      expect(await ed.verify(pub, msg, new Uint8Array(65))).toBe(false);
      expect(await ed.verify(new Uint8Array(32).fill(0xff), msg, sig)).toBe(false); // not a point
      expect(await ed.verify(pub, msg, new Uint8Array(64).fill(0xff))).toBe(false); // S out of range
      expect(await ed.verify(null as unknown as Uint8Array, msg, sig)).toBe(false);
      expect(await ed.verify(pub, 'text' as unknown as Uint8Array, sig)).toBe(false);
    });

    it('refuses a seed of the wrong length with BAD_KEY', async () => {
      await expect(ed.sign(new Uint8Array(31), new Uint8Array(0))).rejects.toMatchObject({ code: 'BAD_KEY' });
      await expect(ed.keyPair(new Uint8Array(64))).rejects.toBeInstanceOf(CoreError);
    });

    it('reads key, message and signature before verify returns (callers may reuse their buffers)', async () => {
      const v = rfc8032.vectors[2];
      // Backend not ready yet; backend ready but the key not imported yet; both ready.
      const ready = createEd25519({ backend });
      await ready.backend();
      for (const inst of [createEd25519({ backend }), ready, ready]) {
        const pub = hex(v.publicKey);
        const msg = hex(v.message);
        const sig = hex(v.signature);
        const pending = inst.verify(pub, msg, sig);
        pub.fill(0);
        msg.fill(0);
        sig.fill(0);
        expect(await pending).toBe(true);
      }
    });

    it('keeps its key after the caller reuses the seed buffer', async () => {
      const seed = hex(rfc8032.vectors[0].secretKey);
      const pair = await ed.keyPair(seed);
      seed.fill(0);
      expect(toHex(await pair.sign(new Uint8Array(0)))).toBe(rfc8032.vectors[0].signature);
    });
  });
}

describe('Ed25519 backends agree', () => {
  const web = createEd25519({ backend: 'webcrypto' });
  const noble = createEd25519({ backend: 'noble' });

  it('produce identical signatures (Ed25519 is deterministic) and verify each other', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), async (seed, msg) => {
        const a = await web.sign(seed, msg);
        const b = await noble.sign(seed, msg);
        expect(toHex(a)).toBe(toHex(b));
        const pub = await web.publicKeyFromSeed(seed);
        expect(await noble.verify(pub, msg, a)).toBe(true);
        expect(await web.verify(pub, msg, b)).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('agree on random junk signatures (both reject)', async () => {
    const pub = hex(rfc8032.vectors[0].publicKey);
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 64, maxLength: 64 }), async (sig) => {
        const msg = new Uint8Array(0);
        expect(await web.verify(pub, msg, sig)).toBe(await noble.verify(pub, msg, sig));
      }),
      { numRuns: 50 },
    );
  });

  it('finds a cached key by buffer only while the buffer still holds that key', async () => {
    const inst = createEd25519({ backend: 'webcrypto' });
    const [a, b] = rfc8032.vectors;
    const pub = hex(a.publicKey);
    expect(await inst.verify(pub, hex(a.message), hex(a.signature))).toBe(true);
    pub.set(hex(b.publicKey)); // same buffer, now another key
    expect(await inst.verify(pub, hex(b.message), hex(b.signature))).toBe(true);
    expect(await inst.verify(pub, hex(a.message), hex(a.signature))).toBe(false);
  });

  it('a small verification key cache still verifies correctly as keys are evicted', async () => {
    const tiny = createEd25519({ backend: 'webcrypto', verifyKeyCacheSize: 2 });
    for (let round = 0; round < 2; round++) {
      for (const v of rfc8032.vectors) {
        expect(await tiny.verify(hex(v.publicKey), hex(v.message), hex(v.signature))).toBe(true);
      }
    }
  });
});

describe('module-level Ed25519', () => {
  afterEach(() => setEd25519Backend('auto'));

  it('raw primitives take a backend option and agree', async () => {
    const v = rfc8032.vectors[2];
    for (const backend of BACKENDS) {
      expect(toHex(await ed25519Sign(hex(v.secretKey), hex(v.message), { backend }))).toBe(v.signature);
      expect(await ed25519Verify(hex(v.publicKey), hex(v.message), hex(v.signature), { backend })).toBe(true);
    }
    expect(toHex(await ed25519PublicKey(hex(v.secretKey)))).toBe(v.publicKey);
  });

  it('setEd25519Backend switches the core-wide instance', async () => {
    setEd25519Backend('noble');
    expect(await defaultEd25519().backend()).toBe('noble');
    setEd25519Backend('webcrypto');
    expect(await defaultEd25519().backend()).toBe('webcrypto');
  });

  it('verifyBatch checks many signatures at once, in order', async () => {
    const items = rfc8032.vectors.flatMap((v) => [
      { publicKey: hex(v.publicKey), message: hex(v.message), signature: hex(v.signature) },
      { publicKey: hex(v.publicKey), message: hex('ff'), signature: hex(v.signature) },
    ]);
    items.push({ publicKey: new Uint8Array(3), message: new Uint8Array(0), signature: new Uint8Array(64) });
    const expected = [true, false, true, false, true, false, false];
    for (const backend of BACKENDS) expect(await verifyBatch(items, { backend })).toEqual(expected);
    expect(await verifyBatch([])).toEqual([]);
  });
});

describe('without WebCrypto Ed25519', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.resetModules();
  });

  it('auto falls back to noble, and an explicit webcrypto request fails clearly', async () => {
    vi.stubGlobal('crypto', { getRandomValues: (a: Uint8Array) => a });
    vi.resetModules();
    const fresh = await import('../../src/core/crypto.js');
    expect(await fresh.webCryptoHasEd25519()).toBe(false);
    const ed = fresh.createEd25519();
    expect(await ed.backend()).toBe('noble');
    const v = rfc8032.vectors[0];
    expect(toHex(await ed.sign(hex(v.secretKey), hex(v.message)))).toBe(v.signature);
    await expect(fresh.createEd25519({ backend: 'webcrypto' }).backend()).rejects.toBeInstanceOf(Error);
  });
});

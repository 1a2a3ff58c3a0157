import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSigner } from '../../src/core/index.js';
import { hexOf, loadOrCreateSigner, parseSigningKey, signerFromSeed } from '../../src/node/identity.js';

// RFC 8032, section 7.1, test 1: a seed and its public key.
const SEED_HEX = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
const PUBLIC_HEX = 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a';
const fromHex = (hex: string) => new Uint8Array(hex.match(/../g)!.map((b) => parseInt(b, 16)));

describe('node identity', () => {
  it('names the server by the lowercase hex of its public key', async () => {
    const signer = await signerFromSeed(fromHex(SEED_HEX));
    expect(signer.serverName).toBe(PUBLIC_HEX);
    expect(signer.keyId).toBe('ed25519:1');
    expect(hexOf(signer.publicKey)).toBe(PUBLIC_HEX);
  });

  it('signs as RFC 8032 and as the core signer do', async () => {
    // RFC 8032, section 7.1, test 1: the signature of the empty message.
    const SIGNATURE_HEX =
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b';
    const signer = await signerFromSeed(fromHex(SEED_HEX));
    expect(hexOf(await signer.sign(new Uint8Array(0)))).toBe(SIGNATURE_HEX);
    const core = await createSigner(fromHex(SEED_HEX), signer.serverName, signer.keyId);
    const message = new TextEncoder().encode('{"content":{"body":"hello"},"type":"m.room.message"}');
    expect(hexOf(await signer.sign(message))).toBe(hexOf(await core.sign(message)));
  });

  it('creates the key once and reads it back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hometab-id-'));
    try {
      const first = await loadOrCreateSigner(dir);
      const second = await loadOrCreateSigner(dir);
      expect(second.serverName).toBe(first.serverName);
      expect(parseSigningKey(await readFile(join(dir, 'signing.key'), 'utf8')).seed).toHaveLength(32);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a damaged key file instead of replacing the identity', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hometab-id-'));
    try {
      await writeFile(join(dir, 'signing.key'), 'ed25519 1 tooshort\n');
      await expect(loadOrCreateSigner(dir)).rejects.toThrow(/not a signing key/);
      expect(await readFile(join(dir, 'signing.key'), 'utf8')).toBe('ed25519 1 tooshort\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

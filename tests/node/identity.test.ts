import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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

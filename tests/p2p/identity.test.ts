// Server name <-> PeerId: one key, two spellings. Vectors in fixtures/identity-vectors.json
// (seeds include RFC 8032's test 1 and 2); each PeerId is also rebuilt here by hand from
// the libp2p spec (identity multihash of the protobuf public key, base58btc), so the
// fixture is checked against something other than the code under test.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { isHometabServerName, peerIdOfServerName, privateKeyFromSeed, serverNameOfPeerId } from '../../src/p2p/identity.js';
import { P2PError } from '../../src/p2p/errors.js';
import { signerFromSeed } from '../../src/node/identity.js';

interface Vector {
  seed: string;
  serverName: string;
  peerId: string;
}
const vectors = JSON.parse(readFileSync(new URL('./fixtures/identity-vectors.json', import.meta.url), 'utf8')) as Vector[];
const fromHex = (hex: string): Uint8Array => Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
function base58(bytes: Uint8Array): string {
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let out = '';
  while (n > 0n) {
    out = ALPHABET[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = '1' + out;
  }
  return out;
}
/** libp2p peer-ids spec: identity multihash (0x00, length 36) of PublicKey{Type: Ed25519 (1), Data: key}. */
function peerIdByHand(publicKey: Uint8Array): string {
  return base58(Uint8Array.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20, ...publicKey]));
}

describe('identity: server name and PeerId', () => {
  it('has vectors, including RFC 8032 test 1', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(5);
    expect(vectors.some((v) => v.serverName === 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')).toBe(true);
  });

  for (const v of vectors) {
    it(`round-trips seed ${v.seed.slice(0, 8)}…`, async () => {
      expect(peerIdByHand(fromHex(v.serverName))).toBe(v.peerId);
      const peerId = peerIdFromPrivateKey(await privateKeyFromSeed(fromHex(v.seed)));
      expect(peerId.toString()).toBe(v.peerId);
      expect(serverNameOfPeerId(peerId)).toBe(v.serverName);
      expect(serverNameOfPeerId(v.peerId)).toBe(v.serverName);
      expect(peerIdOfServerName(v.serverName).toString()).toBe(v.peerId);
      // The homeserver's signer (src/node/identity.ts) names the same key.
      expect((await signerFromSeed(fromHex(v.seed))).serverName).toBe(v.serverName);
    });
  }

  it('refuses names that are not 64 lowercase hex digits', () => {
    for (const bad of ['', 'ABCD', 'A'.repeat(64), 'g'.repeat(64), '0'.repeat(63), '0'.repeat(65), 'example.org']) {
      expect(isHometabServerName(bad)).toBe(false);
      expect(() => peerIdOfServerName(bad)).toThrow(P2PError);
    }
  });

  it('refuses PeerIds that are not ed25519 keys, and seeds of the wrong length', async () => {
    // An RSA-style PeerId (sha256 multihash, Qm…) carries no inline ed25519 key.
    expect(() => serverNameOfPeerId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N')).toThrow(P2PError);
    expect(() => serverNameOfPeerId('not a peer id')).toThrow(P2PError);
    await expect(privateKeyFromSeed(new Uint8Array(31))).rejects.toThrow(P2PError);
  });
});

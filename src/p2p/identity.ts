/**
 * One key, two spellings. A Hometab server's ed25519 key (the 32-byte seed of
 * src/node/identity.ts and the core's createSigner) is also its libp2p private
 * key, so its libp2p PeerId and its Matrix server name (the lowercase hex of
 * the 32-byte public key) name the same key and convert into each other
 * without any lookup. Noise authenticates the remote PeerId during the
 * handshake; this module turns that PeerId into the server name that inbound
 * federation requests are attributed to, so `origin` is never taken from a
 * payload.
 */
import { generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id';
import type { Ed25519PrivateKey, PeerId } from '@libp2p/interface';
import { P2PError } from './errors.js';
import { isHometabServerName } from './server-name.js';

export { isHometabServerName };

/** Length of an ed25519 public key, and so half the length of a server name. */
const PUBLIC_KEY_LENGTH = 32;

/** The libp2p private key for a 32-byte ed25519 seed (the homeserver's signing key). */
export async function privateKeyFromSeed(seed: Uint8Array): Promise<Ed25519PrivateKey> {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) {
    throw new P2PError('BAD_IDENTITY', `an ed25519 seed has 32 bytes, not ${seed?.length}`);
  }
  return generateKeyPairFromSeed('Ed25519', seed);
}

/**
 * The server name of a PeerId (or its string form): the lowercase hex of its
 * ed25519 public key. Throws P2PError('BAD_IDENTITY') for any other key type,
 * so a peer with an RSA or secp256k1 key can never be taken for a server.
 */
export function serverNameOfPeerId(peer: PeerId | string): string {
  const id = typeof peer === 'string' ? parsePeerId(peer) : peer;
  if (id.type !== 'Ed25519' || id.publicKey === undefined) {
    throw new P2PError('BAD_IDENTITY', `peer ${id.toString()} has no ed25519 key`);
  }
  const raw = id.publicKey.raw;
  if (raw.length !== PUBLIC_KEY_LENGTH) throw new P2PError('BAD_IDENTITY', 'ed25519 public key of the wrong length');
  let out = '';
  for (const b of raw) out += b.toString(16).padStart(2, '0');
  return out;
}

/** The PeerId of a server name; throws P2PError('BAD_IDENTITY') if it is not 64 lowercase hex digits. */
export function peerIdOfServerName(server: string): PeerId {
  if (!isHometabServerName(server)) throw new P2PError('BAD_IDENTITY', `${JSON.stringify(String(server).slice(0, 80))} is not a Hometab server name`);
  const raw = new Uint8Array(PUBLIC_KEY_LENGTH);
  for (let i = 0; i < PUBLIC_KEY_LENGTH; i++) raw[i] = parseInt(server.slice(2 * i, 2 * i + 2), 16);
  return peerIdFromPublicKey(publicKeyFromRaw(raw));
}

function parsePeerId(text: string): PeerId {
  try {
    return peerIdFromString(text);
  } catch (error) {
    throw new P2PError('BAD_IDENTITY', `not a PeerId: ${(error as Error).message}`);
  }
}

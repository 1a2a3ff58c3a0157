/**
 * Which public key checks a server's signatures. Hometab needs no key
 * fetching: a server whose name is 64 hex digits is its own ed25519 public
 * key (DESIGN.md "Identity and names"), so a signature is checked against the
 * name it claims. This server's own key comes from its signer; other names
 * are unknown unless a lookup is injected (tests with DNS-style names).
 */
import type { Signer } from '../../core/index.js';

/** Public keys by key ID of a remote server, as an injected lookup returns them. */
export type ServerKeyLookup = (serverName: string) => Promise<Map<string, Uint8Array>>;

export type KeyOf = (server: string, keyId: string) => Promise<Uint8Array | undefined>;

const HEX_KEY = /^[0-9a-f]{64}$/;

/** The ed25519 public key a server name spells, if it is one. */
export function keyInServerName(server: string): Uint8Array | undefined {
  if (!HEX_KEY.test(server)) return undefined;
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(server.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function serverKeys(signer: Signer, lookup?: ServerKeyLookup): KeyOf {
  return async (server, keyId) => {
    if (server === signer.serverName) return keyId === signer.keyId ? signer.publicKey : undefined;
    if (lookup) return (await lookup(server)).get(keyId);
    return keyId.startsWith('ed25519:') ? keyInServerName(server) : undefined;
  };
}

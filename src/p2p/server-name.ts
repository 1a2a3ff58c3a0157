/**
 * What a Hometab server name looks like: the lowercase hex of its 32-byte ed25519 public key. Kept apart
 * from identity.ts (which converts names to and from libp2p PeerIds) so that code checking names only,
 * such as the BroadcastChannel transport the app boots with before any network, does not load libp2p's
 * key and PeerId libraries.
 */

const SERVER_NAME_RE = /^[0-9a-f]{64}$/;

/** True when `name` is a Hometab server name: 64 lowercase hex digits. */
export function isHometabServerName(name: string): boolean {
  return typeof name === 'string' && SERVER_NAME_RE.test(name);
}

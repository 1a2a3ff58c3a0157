/**
 * End-to-end encryption for the tab's matrix-js-sdk client: the Rust crypto (matrix-sdk-crypto-wasm, Olm and
 * Megolm) with its IndexedDB store named after the profile, so two profiles in one browser never share
 * device keys or sessions. The 7.8 MB WASM is never in the first-load JavaScript: src/app/boot.ts has
 * `warmCrypto` fetch and compile it once the room list is on screen (or onboarding is), while the SDK
 * loads, so `enableCrypto` usually only opens the store. If the crypto cannot start (no WASM, a broken
 * store) the client runs without it: the rooms stay readable in the clear and sending to an encrypted room
 * fails with the SDK's own error.
 */
import type { MatrixClient } from 'matrix-js-sdk';

/** The IndexedDB prefix of a profile's crypto store (`<prefix>::matrix-sdk-crypto` and `…-meta`). */
export function cryptoDatabasePrefix(profile: string): string {
  return `hometab-crypto:${profile}`;
}

let warming: Promise<void> | undefined;

/**
 * Fetches and compiles the crypto WASM once, and loads the SDK's Rust crypto chunk (the module its
 * `initRustCrypto` imports itself): `initRustCrypto` then finds both ready.
 */
export function warmCrypto(): Promise<void> {
  warming ??= Promise.all([import('@matrix-org/matrix-sdk-crypto-wasm').then((wasm) => wasm.initAsync()), import('matrix-js-sdk/lib/rust-crypto/index.js')])
    .then(() => undefined)
    .finally(() => performance.mark('hometab:crypto-wasm-ready'));
  return warming;
}

/**
 * Starts the client's Rust crypto over the profile's store; false (logged) when it could not. Each start of
 * the app is an initial sync (the SDK's store is in memory), which carries no `device_lists.changed`: the
 * tracked users' device lists are marked stale so that changes made while the tab was closed are fetched.
 */
export async function enableCrypto(client: MatrixClient, profile: string): Promise<boolean> {
  try {
    await warmCrypto();
    await client.initRustCrypto({ cryptoDatabasePrefix: cryptoDatabasePrefix(profile) });
    // The Rust backend has it; the SDK's public CryptoApi type does not list it.
    await (client.getCrypto() as { markAllTrackedUsersAsDirty?(): Promise<void> } | undefined)?.markAllTrackedUsersAsDirty?.();
    performance.mark('hometab:crypto-ready');
    return true;
  } catch (error) {
    console.error('end-to-end encryption is not available in this tab', error);
    return false;
  }
}

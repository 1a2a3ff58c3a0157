/**
 * End-to-end encryption for the tab's matrix-js-sdk client: the Rust crypto (matrix-sdk-crypto-wasm, Olm and
 * Megolm) with its IndexedDB store named after the profile, so two profiles in one browser never share
 * device keys or sessions. The 7.8 MB WASM is never in the first-load JavaScript: src/app/boot.ts has
 * `prefetchCryptoWasm` fetch its bytes as soon as the host exists and `warmCrypto` compile them once the room
 * list is on screen (or onboarding is), while the SDK loads, so `enableCrypto` usually only opens the store. If the crypto cannot start (no WASM, a broken
 * store) the client runs without it: the rooms stay readable in the clear and sending to an encrypted room
 * fails with the SDK's own error.
 */
import type { MatrixClient } from 'matrix-js-sdk';

/** The IndexedDB prefix of a profile's crypto store (`<prefix>::matrix-sdk-crypto` and `…-meta`). */
export function cryptoDatabasePrefix(profile: string): string {
  return `hometab-crypto:${profile}`;
}

/** The same asset the bindings fetch by default (the build emits one file for both references). */
const CRYPTO_WASM_URL = new URL('../../node_modules/@matrix-org/matrix-sdk-crypto-wasm/pkg/matrix_sdk_crypto_wasm_bg.wasm', import.meta.url);

let wasmBytes: Promise<string | undefined> | undefined;
let warming: Promise<void> | undefined;

/**
 * Fetches the crypto WASM's bytes once, without compiling them (fetching is the network's work, compiling
 * the main thread's): a blob URL for `warmCrypto`, or undefined if the fetch failed (the bindings then fetch
 * it themselves).
 */
export function prefetchCryptoWasm(): Promise<string | undefined> {
  wasmBytes ??= fetch(CRYPTO_WASM_URL)
    .then(async (response) => (response.ok ? URL.createObjectURL(new Blob([await response.arrayBuffer()], { type: 'application/wasm' })) : undefined))
    .catch(() => undefined);
  return wasmBytes;
}

/**
 * Compiles the crypto WASM once (from the bytes `prefetchCryptoWasm` fetched, or fetching them now), and loads
 * the SDK's Rust crypto chunk (the module its `initRustCrypto` imports itself): `initRustCrypto` then finds
 * both ready.
 */
export function warmCrypto(): Promise<void> {
  const compile = async () => {
    const [wasm, url] = await Promise.all([import('@matrix-org/matrix-sdk-crypto-wasm'), prefetchCryptoWasm()]);
    await wasm.initAsync(url);
    if (url) URL.revokeObjectURL(url);
  };
  warming ??= Promise.all([compile(), import('matrix-js-sdk/lib/rust-crypto/index.js')])
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

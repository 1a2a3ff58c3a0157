// What the whole-peer Chromium tests and the replication bench share: peer-entry.ts bundled and served on
// 127.0.0.1, a typed call into a page's peer API, polling until a condition holds, and the test for a
// direct WebRTC link to other servers.
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import type { PeerInfo } from '../../src/p2p/transport.js';
import { bundleForBrowser } from '../support/chromium.js';
import { serveScript, type ScriptServer } from './browser-support.js';
import type * as Entry from './peer-entry.js';

export type PeerApi = typeof Entry;

/** Serves a page whose globalThis.hometabPeer is peer-entry.ts's API. */
export async function servePeerEntry(): Promise<ScriptServer> {
  const script = await bundleForBrowser(fileURLToPath(new URL('./peer-entry.ts', import.meta.url)), { globalName: 'hometabPeer' });
  return serveScript(script, 'hometabPeer');
}

/** Calls `name` of the peer API in `page`. */
export function call<K extends keyof PeerApi>(page: Page, name: K, ...args: Parameters<PeerApi[K]>): Promise<Awaited<ReturnType<PeerApi[K]>>> {
  return page.evaluate(
    ([n, a]) => (globalThis as unknown as { hometabPeer: Record<string, (...x: unknown[]) => unknown> }).hometabPeer[n as string]!(...(a as unknown[])),
    [name, args] as const,
  ) as Promise<Awaited<ReturnType<PeerApi[K]>>>;
}

/** Polls `probe` every `everyMs` until `ok` holds of its value; throws with the last value after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Whether a peer list (the peer API's `libp2pPeers`) has a direct WebRTC link to each of `servers`. */
export const directTo = (...servers: string[]) => (peers: PeerInfo[]) => servers.every((s) => peers.some((p) => p.server === s && p.direct && p.via === 'webrtc'));

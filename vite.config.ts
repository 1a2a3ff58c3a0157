/// <reference types="vitest/config" />
// Build (app) and test (vitest) configuration in one place. Tests run as two projects: the homeserver's, with
// the shared prototypes frozen (tests/homeserver/frozen-prototypes.ts explains why), and everything else.
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig, type Plugin } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';
import { relayDevPlugin } from './src/node/vite-relay.js';
import { configDefaults } from 'vitest/config';

const HOMESERVER_TESTS = 'tests/homeserver/**/*.test.ts';

export default defineConfig(({ mode }) => ({
  // Svelte for the app and for the UI state classes (*.svelte.ts) the tests import; the relay and /config.json for `npm run dev`;
  // in builds only, the PWA: a service worker that precaches the app shell (so the URL opens with no network) and the manifest.
  plugins: [svelte(), relayDevPlugin(), ...(mode === 'test' ? [] : [appShellPwa(), clientChunksPreload()])],
  build: { target: 'es2022', outDir: 'dist' },
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'homeserver',
          include: [HOMESERVER_TESTS],
          setupFiles: ['tests/setup.ts', 'tests/homeserver/frozen-prototypes.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['tests/**/*.test.ts'],
          exclude: [...configDefaults.exclude, HOMESERVER_TESTS],
          setupFiles: ['tests/setup.ts'],
        },
      },
    ],
  },
}));

/** The modules the client's start imports lazily (src/app/boot.ts, src/app/crypto.ts), as their built chunks' facades end. */
const CLIENT_ENTRY_MODULES = ['src/app/matrix-client.ts', '@matrix-org/matrix-sdk-crypto-wasm/index.mjs', 'matrix-js-sdk/lib/rust-crypto/index.js'];

/**
 * index.html gains the list (`#hometab-client-chunks`, JSON) of each chunk the client's start imports lazily and
 * of the chunks those import statically, for src/app/boot.ts to preload (`<link rel="modulepreload">`: fetched
 * and compiled, not evaluated) once the room list is being read; it evaluates them after that list is on
 * screen. As links in index.html itself they were fetched and compiled beside the peer's chunk, which then came
 * 1.2 s later (measured: README, App figures).
 */
function clientChunksPreload(): Plugin {
  return {
    name: 'hometab-client-chunks-preload',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler(_html, context) {
        const bundle = context.bundle;
        if (!bundle) return [];
        const chunks = Object.values(bundle).filter((output) => output.type === 'chunk');
        const byFileName = new Map(chunks.map((chunk) => [chunk.fileName, chunk]));
        const entry = chunks.find((chunk) => chunk.isEntry);
        const alreadyStatic = new Set(entry ? [entry.fileName, ...entry.imports] : []);
        const wanted = new Set<string>();
        const visit = (fileName: string) => {
          if (wanted.has(fileName) || alreadyStatic.has(fileName)) return;
          wanted.add(fileName);
          for (const imported of byFileName.get(fileName)?.imports ?? []) visit(imported);
        };
        for (const chunk of chunks) {
          const facade = chunk.facadeModuleId?.replaceAll('\\', '/') ?? '';
          if (CLIENT_ENTRY_MODULES.some((module) => facade.endsWith(module))) visit(chunk.fileName);
        }
        return [{ tag: 'script', attrs: { type: 'application/json', id: 'hometab-client-chunks' }, children: JSON.stringify([...wanted].map((fileName) => `/${fileName}`)), injectTo: 'head' as const }];
      },
    },
  };
}

/**
 * The service worker precaches every built asset, the crypto WASM included (7.8 MB: every start of the client
 * needs it, and a client that synced without its crypto would lose the room keys in that sync), and answers navigations with index.html, so a reload with the server gone still opens the app;
 * /config.json is never cached (no relay is then known, and the app runs with same-browser peers only).
 * `autoUpdate`: a new build takes over at the next load. No worker in `npm run dev` (devOptions off).
 */
function appShellPwa() {
  return VitePWA({
    registerType: 'autoUpdate',
    injectRegister: 'script-defer',
    // The icons are in globPatterns already.
    includeManifestIcons: false,
    manifest: {
      name: 'Hometab',
      short_name: 'Hometab',
      description: 'Chat on your own Matrix server, running in this tab; rooms replicate peer to peer.',
      start_url: '/',
      scope: '/',
      display: 'standalone',
      theme_color: '#2f6fde',
      background_color: '#ffffff',
      icons: [
        { src: 'icon-192.png', sizes: '192x192', type: 'image/png' },
        { src: 'icon-512.png', sizes: '512x512', type: 'image/png' },
        { src: 'icon-maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        { src: 'icon.svg', sizes: 'any', type: 'image/svg+xml' },
      ],
    },
    workbox: {
      globPatterns: ['**/*.{js,css,html,svg,png,webmanifest,wasm}'],
      maximumFileSizeToCacheInBytes: 10 * 1024 * 1024,
      navigateFallback: 'index.html',
      navigateFallbackDenylist: [/^\/config\.json$/],
      cleanupOutdatedCaches: true,
    },
    devOptions: { enabled: false },
  });
}

/// <reference types="vitest/config" />
// Build (app) and test (vitest) configuration in one place. Tests run as two projects: the homeserver's, with
// the shared prototypes frozen (tests/homeserver/frozen-prototypes.ts explains why), and everything else.
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';
import { relayDevPlugin } from './src/node/vite-relay.js';
import { configDefaults } from 'vitest/config';

const HOMESERVER_TESTS = 'tests/homeserver/**/*.test.ts';

export default defineConfig(({ mode }) => ({
  // Svelte for the app and for the UI state classes (*.svelte.ts) the tests import; the relay and /config.json for `npm run dev`;
  // in builds only, the PWA: a service worker that precaches the app shell (so the URL opens with no network) and the manifest.
  plugins: [svelte(), relayDevPlugin(), ...(mode === 'test' ? [] : [appShellPwa()])],
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

/// <reference types="vitest/config" />
// Build (app) and test (vitest) configuration in one place. Tests run as two projects: the homeserver's, with
// the shared prototypes frozen (tests/homeserver/frozen-prototypes.ts explains why), and everything else.
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';
import { relayDevPlugin } from './src/node/vite-relay.js';
import { configDefaults } from 'vitest/config';

const HOMESERVER_TESTS = 'tests/homeserver/**/*.test.ts';

export default defineConfig({
  // Svelte for the app and for the UI state classes (*.svelte.ts) the tests import; the relay and /config.json for `npm run dev`.
  plugins: [svelte(), relayDevPlugin()],
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
});

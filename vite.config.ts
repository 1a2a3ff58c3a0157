/// <reference types="vitest/config" />
// Build (app) and test (vitest) configuration in one place.
import { defineConfig } from 'vite';

export default defineConfig({
  build: { target: 'es2022', outDir: 'dist' },
  test: {
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});

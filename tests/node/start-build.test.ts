// `npm start` rebuilds dist/ when it is missing or older than any source the build reads, so a developer
// never gets a stale app: distStaleness on a scratch tree with controlled modification times.
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { distStaleness } from '../../src/node/start.js';

let root: string | undefined;
afterEach(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

async function touch(path: string, secondsAgo: number): Promise<void> {
  await writeFile(path, 'x');
  const at = new Date(Date.now() - secondsAgo * 1000);
  await utimes(path, at, at);
}

describe('distStaleness', () => {
  it('asks for a build when dist/ is missing or any source is newer, and not otherwise', async () => {
    root = await mkdtemp(join(tmpdir(), 'hometab-build-'));
    const dist = join(root, 'dist');
    await mkdir(join(root, 'src/ui/components'), { recursive: true });
    await touch(join(root, 'src/ui/components/Deep.svelte'), 100);
    await touch(join(root, 'index.html'), 100);
    await touch(join(root, 'vite.config.ts'), 100);
    await touch(join(root, 'package.json'), 100);
    expect(distStaleness(dist, root)).toBe('no build yet');

    await mkdir(dist);
    await touch(join(dist, 'index.html'), 50);
    expect(distStaleness(dist, root)).toBeUndefined();

    await touch(join(root, 'src/ui/components/Deep.svelte'), 10);
    expect(distStaleness(dist, root)).toBe('src changed since the last build');
    await touch(join(dist, 'index.html'), 5);
    expect(distStaleness(dist, root)).toBeUndefined();

    await touch(join(root, 'vite.config.ts'), 1);
    expect(distStaleness(dist, root)).toBe('vite.config.ts changed since the last build');
  });
});

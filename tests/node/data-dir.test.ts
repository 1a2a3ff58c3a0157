// The data directory's modes: created 0700, a looser existing one and its files tightened, each change noted.
import { mkdtemp, mkdir, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prepareDataDir } from '../../src/node/data-dir.js';

const modeOf = async (path: string) => (await stat(path)).mode & 0o777;

describe('prepareDataDir', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'hometab-datadir-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('creates a missing directory 0700 without a note', async () => {
    const notes: string[] = [];
    const dir = join(root, 'a', 'b');
    await prepareDataDir(dir, (n) => notes.push(n));
    expect(await modeOf(dir)).toBe(0o700);
    expect(notes).toEqual([]);
  });

  it('tightens an existing 0755 directory and its 0644 files, and says so', async () => {
    const dir = join(root, 'data');
    await mkdir(dir);
    await chmod(dir, 0o755);
    for (const name of ['signing.key', 'homeserver.sqlite', 'homeserver.sqlite-wal']) {
      await writeFile(join(dir, name), 'x');
      await chmod(join(dir, name), 0o644);
    }
    await writeFile(join(dir, 'private'), 'x', { mode: 0o600 });
    const notes: string[] = [];
    await prepareDataDir(dir, (n) => notes.push(n));
    expect(await modeOf(dir)).toBe(0o700);
    for (const name of ['signing.key', 'homeserver.sqlite', 'homeserver.sqlite-wal', 'private']) expect(await modeOf(join(dir, name))).toBe(0o600);
    expect(notes).toHaveLength(4);
    expect(notes[0]).toBe(`${dir} was mode 755; tightened to 700`);
    // Already tight: nothing to say the second time.
    await prepareDataDir(dir, (n) => notes.push(n));
    expect(notes).toHaveLength(4);
  });
});

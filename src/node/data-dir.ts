/**
 * The Node homeserver's data directory at rest: it holds the signing key and
 * the database (every room, every hashed token and password), so only the
 * user who runs the server may read it. The directory is created 0700, or
 * tightened to 0700 if it already exists with more (a directory made by hand
 * or by an older version is typically 0755), and files already in it are
 * tightened to 0600; files created later are 0600 because the CLI runs with
 * umask 077 and the SQLite backend creates its files 0600 (see
 * storage/sqlite). Each tightening is logged, since it changes what the
 * operator set. On Windows modes mean little and chmod is close to a no-op.
 */
import { chmod, mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const DATA_DIR_MODE = 0o700;
export const DATA_FILE_MODE = 0o600;

/** Creates `dir` (mode 0700) or tightens it and the files in it; `note` hears of each mode changed. */
export async function prepareDataDir(dir: string, note: (message: string) => void): Promise<void> {
  await mkdir(dir, { recursive: true, mode: DATA_DIR_MODE });
  await tighten(dir, DATA_DIR_MODE, note);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isFile()) await tighten(join(dir, entry.name), DATA_FILE_MODE, note);
  }
}

/** Removes every permission bit `mode` lacks from `path`. */
async function tighten(path: string, mode: number, note: (message: string) => void): Promise<void> {
  const current = (await stat(path)).mode & 0o777;
  if ((current & ~mode) === 0) return;
  await chmod(path, current & mode);
  note(`${path} was mode ${current.toString(8)}; tightened to ${(current & mode).toString(8)}`);
}

/**
 * What the homeserver does with a stored row that cannot be read back
 * (StorageError CORRUPT_ROW, e.g. written by a version that let a value nested
 * 2,400 deep through): reads of lists of user-supplied rows (to-device inboxes,
 * device and cross-signing keys, account data) skip it with a warning, so one
 * poisoned row costs its owner that row instead of turning every /sync or
 * /keys/query that scans past it into a 500.
 */
import type { OnCorruptRow } from '../storage/errors.js';
import type { Logger } from './context.js';

/** An OnCorruptRow that logs the skipped row with what was being read. */
export function skipCorruptRows(log: Logger, reading: string): OnCorruptRow {
  return (error) => log.warn(`skipped a stored row that cannot be read back while reading ${reading}`, error.message);
}

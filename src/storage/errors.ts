/**
 * Typed errors of the storage layer. Callers branch on `code` (an event that
 * already exists, a transaction used after IndexedDB would have committed it)
 * rather than on messages, and every backend throws the same codes.
 */
export type StorageErrorCode =
  | 'EXISTS' // insert of a record whose key is taken
  | 'NOT_FOUND' // update of a record that does not exist
  | 'BAD_KEY' // a key part that is not a string or a number
  | 'READ_ONLY' // a write inside a read transaction
  | 'TXN_INACTIVE' // the callback awaited something other than its transaction
  | 'SCHEMA' // unknown table or index, or a database newer than this code
  | 'UNSTORABLE' // a row that could not be read back (too deep, or not JSON + Uint8Array); nothing was written
  | 'CORRUPT_ROW' // a stored row that cannot be decoded (written by older code, or damaged on disk)
  | 'CLOSED'; // the storage was closed

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string) {
    super(message);
    this.name = 'StorageError';
    this.code = code;
  }
}

/**
 * Told of each stored row a list read skipped because it cannot be decoded (CORRUPT_ROW). Readers of lists of
 * user-supplied rows pass one, so one poisoned row costs its owner that row, not every read that scans past it.
 */
export type OnCorruptRow = (error: StorageError) => void;

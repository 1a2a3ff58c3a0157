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
  | 'CLOSED'; // the storage was closed

export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string) {
    super(message);
    this.name = 'StorageError';
    this.code = code;
  }
}

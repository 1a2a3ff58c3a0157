/** Test helper: the CoreError code a promise rejects with, or 'no error' (other errors are rethrown). */
import { CoreError } from '../../src/core/index.js';

export async function coreErrorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CoreError) return e.code;
    throw e;
  }
  return 'no error';
}

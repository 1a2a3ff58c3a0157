/**
 * Conversions between store records and engine rows. Records are plain objects
 * already; these casts exist because TypeScript interfaces lack the index
 * signature `Row` has, and because absent optional fields must not be stored
 * as `undefined` (backends would disagree on whether the key exists).
 */
import type { Row } from '../engine.js';

/** A record as a row, without its undefined fields. */
export function toRow(record: object): Row {
  const row: Row = {};
  for (const [field, value] of Object.entries(record)) if (value !== undefined) row[field] = value;
  return row;
}

/** A row read back as the record type stored under its table. */
export function fromRow<R>(row: Row | undefined): R | undefined {
  return row as R | undefined;
}

/** Rows read back as records. */
export function fromRows<R>(rows: Row[]): R[] {
  return rows as unknown as R[];
}

/** `record` with `patch` applied; a patch field set to undefined removes the field. */
export function patched<R extends object>(record: R, patch: NoInfer<Partial<R>>): R {
  const next = { ...record } as Record<string, unknown>;
  for (const [field, value] of Object.entries(patch)) {
    if (value === undefined) delete next[field];
    else next[field] = value;
  }
  return next as R;
}

/**
 * Conversions between store records and engine rows. Records are plain objects
 * already; these casts exist because TypeScript interfaces lack the index
 * signature `Row` has, and because absent optional fields must not be stored
 * as `undefined` (backends would disagree on whether the key exists).
 */
import type { Row } from '../engine.js';

/** A record as a row, without its undefined fields (built with Object.fromEntries: any field name is just data). */
export function toRow(record: object): Row {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
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
  const fields = new Map(Object.entries(record));
  for (const [field, value] of Object.entries(patch)) {
    if (value === undefined) fields.delete(field);
    else fields.set(field, value);
  }
  return Object.fromEntries(fields) as R;
}

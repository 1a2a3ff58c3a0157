/**
 * Reading fields of request bodies and path parameters, with the errors the
 * client-server API gives for them: a missing required field is
 * M_MISSING_PARAM, a field of the wrong JSON type M_BAD_JSON, and a well-typed
 * but invalid identifier M_INVALID_PARAM (all 400).
 */
import { isDomainRoomId, isHashRoomId } from '../../core/index.js';
import { badJson, invalidParam, missingParam } from './errors.js';

type Body = Record<string, unknown>;

export interface LimitOptions {
  /** The limit when the parameter is absent or empty. */
  fallback: number;
  /** Smaller values are refused (400). */
  min?: number;
  /** Larger values are clamped to this, as Synapse clamps them. */
  max?: number;
}

/** A `limit` query parameter: a whole number of at most nine digits, at least `min` (else 400 M_INVALID_PARAM), at most `max`. */
export function limitParam(raw: string | null, { fallback, min = 0, max = Number.MAX_SAFE_INTEGER }: LimitOptions): number {
  if (raw === null || raw === '') return fallback;
  if (!/^\d{1,9}$/.test(raw)) throw invalidParam("Query parameter 'limit' must be a non-negative integer");
  const limit = Number(raw);
  if (limit < min) throw invalidParam(`Query parameter 'limit' must be at least ${min}`);
  return Math.min(limit, max);
}

/** A JSON object (not null, not an array), as request bodies and their nested fields must often be. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A string field that may be absent. */
export function optionalString(body: Body, key: string): string | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badJson(`'${key}' must be a string`);
  return value;
}

/** A string field that must be present. */
export function requiredString(body: Body, key: string): string {
  if (body[key] === undefined) throw missingParam(`Missing params: ['${key}']`);
  return optionalString(body, key)!;
}

/** A boolean field that may be absent. */
export function optionalBoolean(body: Body, key: string): boolean | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw badJson(`'${key}' must be a boolean`);
  return value;
}

/** A room ID of any version we serve: `!opaque:server` (10, 11) or `!` + hash (12). */
export function isRoomId(id: unknown): id is string {
  return isDomainRoomId(id) || isHashRoomId(id);
}

/** A `{roomId}` path parameter; M_INVALID_PARAM unless it is a room ID. */
export function roomIdParam(value: string | undefined): string {
  if (!isRoomId(value)) throw invalidParam(`Invalid room ID: ${value}`);
  return value;
}

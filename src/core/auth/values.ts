/**
 * Defensive readers for the JSON the authorization rules look at. Events come
 * from untrusted servers, so every field the rules read may be missing or of
 * the wrong type; these readers turn such input into "absent" (or a denial at
 * the call site) instead of a crash.
 */
import type { PDU } from '../types.js';
import { isPlainObject } from '../json-util.js';

/** The core's one test for a JSON object (json-util.ts), under the name the rules use. */
export const isObject = isPlainObject;

/** Canonical JSON only carries integers in [-(2^53)+1, 2^53-1]: exactly the safe integers. */
export function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

export function contentOf(event: PDU | undefined): Record<string, unknown> {
  return event && isObject(event.content) ? event.content : {};
}

/** Membership recorded by a member event; no event (or a garbled one) counts as `leave`, as the spec's defaults do. */
export function membershipOf(memberEvent: PDU | undefined): string {
  const membership = contentOf(memberEvent).membership;
  return typeof membership === 'string' ? membership : 'leave';
}

/**
 * The server name of a user or (pre-v12) room ID: everything after the first
 * colon. Unlike identifiers.ts's serverNameOf this never throws, because the
 * rules compare domains of IDs that may be garbage.
 */
export function domainOf(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const colon = id.indexOf(':');
  return colon < 0 ? undefined : id.slice(colon + 1);
}

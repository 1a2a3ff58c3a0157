/**
 * The key under which a state event is filed in a state map. It is the JSON
 * array `[type, state_key]`, which is unambiguous for any strings (a plain
 * separator is not: event types and state keys may contain any character).
 */
export function stateKeyOf(type: string, stateKey: string): string {
  return JSON.stringify([type, stateKey]);
}

/** Splits a state map key back into its type and state key. */
export function splitStateKey(key: string): [type: string, stateKey: string] {
  const parsed = JSON.parse(key) as [string, string];
  return [parsed[0], parsed[1]];
}

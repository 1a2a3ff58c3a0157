/**
 * The event core's public entry: pure functions over Matrix events that run
 * unchanged in Node and in browsers (no I/O, no DOM, no Node built-ins). Later
 * layers import the core only through this file.
 */
export type { JsonValue, JsonObject, PDU, Signer, StateMap, GetEvent, AuthResult } from './types.js';
export { CoreError, type CoreErrorCode } from './errors.js';
export { stateKeyOf, splitStateKey } from './state-key.js';
export { roomVersionRules, SUPPORTED_ROOM_VERSIONS, DEFAULT_ROOM_VERSION, type RoomVersionRules } from './room-versions.js';

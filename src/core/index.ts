/**
 * The event core's public entry: pure functions over Matrix events that run
 * unchanged in Node and in browsers (no I/O, no DOM, no Node built-ins). Later
 * layers import the core only through this file.
 */
export type { JsonValue, JsonObject, PDU, Signer, StateMap, GetEvent, AuthResult } from './types.js';
export { CoreError, type CoreErrorCode } from './errors.js';
export { stateKeyOf, splitStateKey } from './state-key.js';
export { roomVersionRules, SUPPORTED_ROOM_VERSIONS, DEFAULT_ROOM_VERSION, type RoomVersionRules } from './room-versions.js';
export { checkEventAuth, type AuthCheckOptions } from './auth/auth-rules.js';
export { authEventTypesFor, pickAuthEvents, type AuthEventKey, type AuthEventSelectionInput } from './auth/auth-events.js';
export { powerLevelOf, isCreator, creatorsOf, requiredPowerLevel, actionPowerLevel, notificationPowerLevel, type PowerLevelAction } from './auth/power-levels.js';
export { redactionPermitted, redactionTarget } from './auth/redaction.js';
export { canonicalJson, canonicalJsonBytes, compareCodePoints, isWellFormedString, utf8Length, MAX_CANONICAL_DEPTH } from './canonical-json.js';
export { jsonDepth, setOwn } from './json-util.js';
export { encodeBase64, decodeBase64 } from './base64.js';
export { sha256, sha256Async, utf8, createEd25519, setEd25519Backend, defaultEd25519, ed25519Sign, ed25519Verify, ed25519PublicKey, verifyBatch, webCryptoHasEd25519, type Ed25519, type Ed25519Options, type Ed25519BackendName, type Ed25519BackendChoice, type Ed25519KeyPair, type VerifyItem } from './crypto.js';
export { createSigner, signJson, verifyJsonSignature, type SignerOptions } from './signing.js';
export { serverNameOf, isValidServerName, isValidUserId, isHashEventId, isHashRoomId, isDomainRoomId, MAX_ID_BYTES } from './identifiers.js';
export { contentHash, contentHashBytes, checkContentHash } from './events/hashing.js';
export { redactEvent } from './events/redaction.js';
export { eventIdOf, referenceHash, roomIdFromCreateEvent } from './events/ids.js';
export { signEvent, verifyEventSignature } from './events/signing.js';
export { validatePdu, MAX_PDU_BYTES, MAX_PREV_EVENTS, MAX_AUTH_EVENTS } from './events/validate.js';
export { resolveState, type ResolveStateOptions } from './state/resolve.js';
export { forwardExtremities, authChain, authDifference, topologicalOrder, missingParents, type AuthChainOptions } from './dag.js';
export { verifyEvent, type EventVerification } from './events/verify.js';

/**
 * Shared shapes of the event core: the persistent data unit (PDU) as it
 * travels between servers, the signer that signs on behalf of one server key,
 * and the state map that state resolution works on. Only types live here.
 */

/** JSON values as they appear in events (integers only; see canonical-json.ts). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * A persistent data unit of room versions 10, 11 and 12. `event_id` is not part
 * of the signed event in these versions (it is the reference hash); stores and
 * the state resolution fixtures carry it beside the event, so it is optional here.
 */
export interface PDU {
  event_id?: string;
  room_id?: string; // absent from v12 create events (the room ID is derived from them)
  sender: string;
  type: string;
  state_key?: string;
  content: Record<string, unknown>;
  origin_server_ts: number;
  prev_events: string[];
  auth_events: string[];
  depth?: number;
  redacts?: string; // top-level in v10; moved into content in v11+
  hashes?: { sha256: string };
  signatures?: Record<string, Record<string, string>>;
  unsigned?: Record<string, unknown>;
  origin?: string; // legacy top-level key, kept by v1-10 redaction
  [key: string]: unknown;
}

/** Signs on behalf of one key of one server. */
export interface Signer {
  serverName: string;
  keyId: string; // e.g. "ed25519:1"
  publicKey: Uint8Array;
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** stateKeyOf(type, state_key) -> event_id */
export type StateMap = Map<string, string>;

/** Looks up an event by ID; may be sync or async, may not know the event. */
export type GetEvent = (eventId: string) => PDU | undefined | Promise<PDU | undefined>;

export type AuthResult = { allowed: true } | { allowed: false; reason: string };

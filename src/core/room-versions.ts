/**
 * What differs between the room versions Hometab speaks (10, 11 and 12), as
 * data. Algorithms ask for the rules of a version once and branch on named
 * features, never on version strings.
 */
import { CoreError } from './errors.js';

export interface RoomVersionRules {
  readonly id: string;
  /** 'v2' for rooms 10 and 11; 'v2.1' (empty starting state, conflicted subgraph) for 12. */
  readonly stateResolution: 'v2' | 'v2.1';
  /** v11+ redaction: keep `redacts` in content, drop top-level `origin` etc., keep create content whole. */
  readonly redactionV11: boolean;
  /** v11+: `redacts` lives in `content`, not at the top level. */
  readonly redactsInContent: boolean;
  /** v11+: the create event's `creator` key is gone; the sender is the creator. */
  readonly implicitCreator: boolean;
  /** v12: the room ID is "!" + the create event's reference hash; create events have no room_id. */
  readonly roomIdFromCreateEvent: boolean;
  /** v12: the create event's sender and `additional_creators` have infinite power. */
  readonly privilegedCreators: boolean;
  /** v10+: power level values must be integers (not strings). */
  readonly integerPowerLevels: boolean;
  /** v7+ knocking, v8+ restricted joins, v10 knock_restricted: all on in 10–12. */
  readonly knocking: boolean;
  readonly restrictedJoins: boolean;
  readonly knockRestricted: boolean;
}

const V10: RoomVersionRules = {
  id: '10',
  stateResolution: 'v2',
  redactionV11: false,
  redactsInContent: false,
  implicitCreator: false,
  roomIdFromCreateEvent: false,
  privilegedCreators: false,
  integerPowerLevels: true,
  knocking: true,
  restrictedJoins: true,
  knockRestricted: true,
};

const V11: RoomVersionRules = { ...V10, id: '11', redactionV11: true, redactsInContent: true, implicitCreator: true };

const V12: RoomVersionRules = {
  ...V11,
  id: '12',
  stateResolution: 'v2.1',
  roomIdFromCreateEvent: true,
  privilegedCreators: true,
};

const RULES: ReadonlyMap<string, RoomVersionRules> = new Map([
  ['10', V10],
  ['11', V11],
  ['12', V12],
]);

export const SUPPORTED_ROOM_VERSIONS: readonly string[] = [...RULES.keys()];
export const DEFAULT_ROOM_VERSION = '12';

/** The rules of a room version; throws CoreError UNKNOWN_ROOM_VERSION for anything else. */
export function roomVersionRules(roomVersion: string): RoomVersionRules {
  const rules = typeof roomVersion === 'string' ? RULES.get(roomVersion) : undefined;
  if (!rules) throw new CoreError('UNKNOWN_ROOM_VERSION', `unsupported room version ${JSON.stringify(roomVersion)}`);
  return rules;
}

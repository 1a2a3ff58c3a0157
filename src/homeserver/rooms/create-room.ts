/**
 * What a POST /createRoom request means, as a list of event drafts in the
 * order the spec and Synapse send them: m.room.create, the creator's join,
 * m.room.power_levels (Synapse's defaults, the preset's override, then the
 * request's), m.room.canonical_alias, m.room.join_rules,
 * m.room.history_visibility, m.room.guest_access (private presets),
 * initial_state, m.room.name, m.room.topic, then one invite per invitee.
 * Also checks the request body's types and bounds its lists (limits/bounds.ts:
 * each entry becomes a signed event). Pure: building, signing and storing the
 * events is the engine's job.
 */
import { isValidUserId, roomVersionRules, SUPPORTED_ROOM_VERSIONS, type JsonObject } from '../../core/index.js';
import { badJson, invalidParam, MatrixError } from '../http/errors.js';
import type { CreateRoomRequest } from './types.js';
import { checkIdLength, checkPowerLevelsContent } from './validate.js';
import { isJsonObject, optionalString } from '../http/params.js';
import { BOUNDS, checkListLength, checkMapSize } from '../limits/bounds.js';
import { setOwn } from '../own-keys.js';

export type Preset = 'private_chat' | 'public_chat' | 'trusted_private_chat';

interface PresetConfig {
  joinRule: string;
  historyVisibility: string;
  originalInviteesHaveOps: boolean;
  guestCanJoin: boolean;
  powerLevelOverride: Record<string, unknown>;
}

const PRESETS: Record<Preset, PresetConfig> = {
  private_chat: {
    joinRule: 'invite',
    historyVisibility: 'shared',
    originalInviteesHaveOps: false,
    guestCanJoin: true,
    powerLevelOverride: { invite: 0 },
  },
  trusted_private_chat: {
    joinRule: 'invite',
    historyVisibility: 'shared',
    originalInviteesHaveOps: true,
    guestCanJoin: true,
    powerLevelOverride: { invite: 0 },
  },
  public_chat: {
    joinRule: 'public',
    historyVisibility: 'shared',
    originalInviteesHaveOps: false,
    guestCanJoin: false,
    powerLevelOverride: { 'm.call.invite': 50 },
  },
};

/** One event createRoom will send, before the engine builds it. */
export interface CreateDraft {
  type: string;
  stateKey: string;
  content: Record<string, unknown>;
}

export interface CreateRoomPlan {
  roomVersion: string;
  isPublic: boolean;
  /** The local part of the alias to create, if any. */
  aliasLocalpart?: string;
  /** m.room.create content (without `creator`/`room_version`, which the engine adds). */
  createContent: Record<string, unknown>;
  /** Everything after the create event and the creator's join, in order. */
  stateDrafts: CreateDraft[];
  invitees: string[];
  isDirect: boolean;
}

/** Checks the request body's fields and types; returns it typed. */
export function parseCreateRoomRequest(body: Record<string, unknown>): CreateRoomRequest {
  const request: CreateRoomRequest = {};
  // Sizes first, before any per-entry work.
  checkListLength('invite', body.invite, BOUNDS.createRoomInvites);
  checkListLength('invite_3pid', body.invite_3pid, BOUNDS.createRoomThirdPartyInvites);
  checkListLength('initial_state', body.initial_state, BOUNDS.createRoomInitialState);
  const override = body.power_level_content_override;
  if (isJsonObject(override)) {
    checkMapSize('power_level_content_override.users', override.users, BOUNDS.createRoomPowerLevelEntries);
    checkMapSize('power_level_content_override.events', override.events, BOUNDS.createRoomPowerLevelEntries);
  }
  if (isJsonObject(body.creation_content)) {
    checkListLength('creation_content.additional_creators', body.creation_content.additional_creators, BOUNDS.createRoomAdditionalCreators);
  }
  const visibility = optionalString(body, 'visibility');
  if (visibility !== undefined) {
    if (visibility !== 'public' && visibility !== 'private') throw invalidParam(`'visibility' must be "public" or "private"`);
    request.visibility = visibility;
  }
  const preset = optionalString(body, 'preset');
  if (preset !== undefined) {
    if (!Object.hasOwn(PRESETS, preset)) throw invalidParam(`'${preset}' is not a valid preset`);
    request.preset = preset as Preset;
  }
  request.room_alias_name = optionalString(body, 'room_alias_name');
  request.name = optionalString(body, 'name');
  request.topic = optionalString(body, 'topic');
  if (body.room_version !== undefined) {
    if (typeof body.room_version !== 'string') throw badJson("'room_version' must be a string");
    request.room_version = body.room_version;
  }
  if (body.invite !== undefined) {
    if (!Array.isArray(body.invite) || !body.invite.every((id) => typeof id === 'string')) {
      throw badJson("'invite' must be a list of user IDs");
    }
    for (const id of body.invite as string[]) if (!isValidUserId(id)) throw invalidParam(`Invalid user_id: ${id}`);
    request.invite = body.invite as string[];
  }
  if (body.invite_3pid !== undefined) {
    if (!Array.isArray(body.invite_3pid)) throw badJson("'invite_3pid' must be a list");
    if (body.invite_3pid.length > 0) {
      throw new MatrixError(400, 'M_UNRECOGNIZED', 'Third-party invites are not supported by this server');
    }
  }
  if (body.is_direct !== undefined) {
    if (typeof body.is_direct !== 'boolean') throw badJson("'is_direct' must be a boolean");
    request.is_direct = body.is_direct;
  }
  for (const key of ['creation_content', 'power_level_content_override'] as const) {
    if (body[key] === undefined) continue;
    if (!isJsonObject(body[key])) throw badJson(`'${key}' must be an object`);
    request[key] = body[key] as Record<string, unknown>;
  }
  if (body.initial_state !== undefined) {
    if (!Array.isArray(body.initial_state)) throw badJson("'initial_state' must be a list");
    request.initial_state = body.initial_state.map((entry, i) => {
      if (!isJsonObject(entry)) throw badJson(`'initial_state[${i}]' must be an object`);
      if (typeof entry.type !== 'string') throw badJson(`'initial_state[${i}].type' must be a string`);
      if (entry.state_key !== undefined && typeof entry.state_key !== 'string') {
        throw badJson(`'initial_state[${i}].state_key' must be a string`);
      }
      if (!isJsonObject(entry.content)) throw badJson(`'initial_state[${i}].content' must be an object`);
      return { type: entry.type, state_key: entry.state_key as string | undefined, content: entry.content };
    });
  }
  return request;
}

/**
 * Turns a checked request into the drafts to send. `defaultVersion` applies
 * when the request names none; M_UNSUPPORTED_ROOM_VERSION for versions we do
 * not speak, M_INVALID_PARAM for a bad alias name.
 */
export function planCreateRoom(creator: string, request: CreateRoomRequest, defaultVersion: string): CreateRoomPlan {
  const roomVersion = request.room_version ?? defaultVersion;
  if (!SUPPORTED_ROOM_VERSIONS.includes(roomVersion)) {
    throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', 'Your homeserver does not support this room version');
  }
  const rules = roomVersionRules(roomVersion);

  const aliasLocalpart = request.room_alias_name;
  if (aliasLocalpart !== undefined) {
    if (/\s/.test(aliasLocalpart) || aliasLocalpart.length === 0) throw invalidParam('Invalid characters in room alias');
    if (aliasLocalpart.includes(':')) {
      throw invalidParam("':' is not permitted in the room alias name; give the local part only ('wombat', not '#wombat:example.com')");
    }
  }

  const visibility = request.visibility ?? 'private';
  const presetName: Preset = request.preset ?? (visibility === 'public' ? 'public_chat' : 'private_chat');
  const preset = PRESETS[presetName];
  const invitees = [...new Set(request.invite ?? [])].filter((id) => id !== creator);

  const createContent: Record<string, unknown> = { ...(request.creation_content ?? {}) };
  delete createContent.room_version;
  delete createContent.creator;
  if (rules.privilegedCreators && presetName === 'trusted_private_chat' && invitees.length > 0) {
    // In v12 power comes from being a creator: trusted invitees become additional creators (as Synapse does).
    const extra = createContent.additional_creators;
    const listed = Array.isArray(extra) ? extra : [];
    createContent.additional_creators = [...new Set([...listed, ...invitees])];
  }
  if (createContent.additional_creators !== undefined) {
    const extra = createContent.additional_creators;
    if (!rules.privilegedCreators) throw badJson("'additional_creators' is only valid in room version 12");
    if (!Array.isArray(extra) || !extra.every((id) => isValidUserId(id))) {
      throw badJson("'additional_creators' must be a list of user IDs");
    }
  }

  const initial = new Map<string, CreateDraft>();
  for (const entry of request.initial_state ?? []) {
    const stateKey = entry.state_key ?? '';
    if (entry.type === 'm.room.create') throw new MatrixError(400, 'M_INVALID_ROOM_STATE', 'initial_state cannot contain m.room.create');
    checkIdLength('type', entry.type);
    checkIdLength('state_key', stateKey);
    const key = JSON.stringify([entry.type, stateKey]);
    // Later entries replace earlier ones but keep their place (Synapse's OrderedDict).
    const existing = initial.get(key);
    if (existing) existing.content = entry.content;
    else initial.set(key, { type: entry.type, stateKey, content: entry.content });
  }
  const inInitial = (type: string) => initial.has(JSON.stringify([type, '']));
  const takeInitial = (type: string) => {
    const key = JSON.stringify([type, '']);
    const draft = initial.get(key);
    initial.delete(key);
    return draft;
  };

  const override = request.power_level_content_override;
  if (override) {
    checkPowerLevelsContent(override);
    if (!rules.privilegedCreators && isJsonObject(override.users) && !Object.hasOwn(override.users, creator)) {
      throw new MatrixError(
        400,
        'M_INVALID_ROOM_STATE',
        `Not a valid power_level_content_override: 'users' did not contain ${creator}`,
      );
    }
  }

  const drafts: CreateDraft[] = [];
  const initialPowerLevels = takeInitial('m.room.power_levels');
  if (initialPowerLevels) {
    checkPowerLevelsContent(initialPowerLevels.content);
    drafts.push(initialPowerLevels);
  } else {
    const users: Record<string, number> = {};
    if (!rules.privilegedCreators) {
      setOwn(users, creator, 100);
      if (preset.originalInviteesHaveOps) for (const invitee of invitees) setOwn(users, invitee, 100);
    }
    const content: Record<string, unknown> = {
      users,
      users_default: 0,
      events: {
        'm.room.name': 50,
        'm.room.power_levels': 100,
        'm.room.history_visibility': 100,
        'm.room.canonical_alias': 50,
        'm.room.avatar': 50,
        'm.room.tombstone': rules.privilegedCreators ? 150 : 100,
        'm.room.server_acl': 100,
        'm.room.encryption': 100,
      },
      events_default: 0,
      state_default: 50,
      ban: 50,
      kick: 50,
      redact: 50,
      invite: 50,
      historical: 100,
      ...preset.powerLevelOverride,
      ...(override ?? {}),
    };
    if (rules.privilegedCreators && isJsonObject(content.users)) {
      // v12 creators must not be listed; drop them rather than fail (Synapse strips them too).
      const extra = createContent.additional_creators;
      const creators = [creator, ...(Array.isArray(extra) ? (extra as string[]) : [])];
      const cleaned = { ...content.users };
      for (const id of creators) delete cleaned[id];
      content.users = cleaned;
    }
    drafts.push({ type: 'm.room.power_levels', stateKey: '', content });
  }

  if (aliasLocalpart !== undefined && !inInitial('m.room.canonical_alias')) {
    // The alias itself is filled in by the engine, which knows the server name.
    drafts.push({ type: 'm.room.canonical_alias', stateKey: '', content: { alias: aliasLocalpart } });
  }
  if (!inInitial('m.room.join_rules')) drafts.push({ type: 'm.room.join_rules', stateKey: '', content: { join_rule: preset.joinRule } });
  if (!inInitial('m.room.history_visibility')) {
    drafts.push({ type: 'm.room.history_visibility', stateKey: '', content: { history_visibility: preset.historyVisibility } });
  }
  if (preset.guestCanJoin && !inInitial('m.room.guest_access')) {
    drafts.push({ type: 'm.room.guest_access', stateKey: '', content: { guest_access: 'can_join' } });
  }
  drafts.push(...initial.values());
  if (request.name !== undefined) drafts.push({ type: 'm.room.name', stateKey: '', content: { name: request.name } });
  if (request.topic !== undefined) {
    drafts.push({
      type: 'm.room.topic',
      stateKey: '',
      content: { topic: request.topic, 'm.topic': { 'm.text': [{ body: request.topic }] } },
    });
  }

  return {
    roomVersion,
    isPublic: visibility === 'public',
    aliasLocalpart,
    createContent,
    stateDrafts: drafts,
    invitees,
    isDirect: request.is_direct === true,
  };
}

/** The state event types copied, stripped, into an invite's `invite_room_state` (Synapse's default list). */
export const INVITE_STATE_TYPES = [
  'm.room.create',
  'm.room.join_rules',
  'm.room.canonical_alias',
  'm.room.avatar',
  'm.room.encryption',
  'm.room.name',
  'm.room.topic',
] as const;

/** A stripped state event: what an invitee may see of a room before joining. */
export function strippedState(event: { type: string; state_key?: string; content: Record<string, unknown>; sender: string }): JsonObject {
  return { type: event.type, state_key: event.state_key ?? '', content: event.content as JsonObject, sender: event.sender };
}

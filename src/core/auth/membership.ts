/**
 * The `m.room.member` authorization rules (rule 4 in v10/11, 5 in v12): which
 * membership transitions a sender may make for a target, given the join rule,
 * both users' current memberships and power levels. Signature checks the rules
 * require (`join_authorised_via_users_server`, third-party invite tokens) are
 * delegated to verifiers the caller injects, since this code has no keys.
 */
import type { AuthResult, PDU } from '../types.js';
import type { RoomVersionRules } from '../room-versions.js';
import type { AuthEventIndex } from './auth-events.js';
import { createEventIdFromRoomId } from './auth-events.js';
import { isValidUserId } from '../identifiers.js';
import { actionPowerLevel, creatorsOf } from './power-levels.js';
import { contentOf, domainOf, isObject, membershipOf } from './values.js';

/** Signature checks the member rules need but cannot do without keys and crypto. */
export interface MemberSignatureVerifiers {
  /**
   * True if `signed` (a third-party invite's `content.third_party_invite.signed`)
   * carries a valid ed25519 signature, in `signed.signatures`, by `publicKey`
   * (unpadded base64, as in `m.room.third_party_invite`). Must verify over the
   * canonical JSON of `signed` without `signatures`. Without this verifier every
   * third-party invite is rejected: an unchecked token would let its sender
   * skip the membership and invite-level checks.
   */
  verifyThirdPartyInviteSignature?: (signed: Record<string, unknown>, publicKey: string) => boolean;
  /**
   * True if `event` is validly signed by `serverName` (used for
   * `join_authorised_via_users_server`). Default: a signature from that
   * server is present; its validity is then the receive pipeline's job, which
   * must verify the authorising server's signature like the origin's.
   */
  isSignedByServer?: (event: PDU, serverName: string) => boolean;
}

export interface MemberContext {
  readonly rules: RoomVersionRules;
  readonly authEvents: AuthEventIndex;
  levelOf(userId: string): number;
}

const allow: AuthResult = { allowed: true };
const deny = (reason: string): AuthResult => ({ allowed: false, reason });

function defaultIsSignedByServer(event: PDU, serverName: string): boolean {
  const signatures = isObject(event.signatures) ? event.signatures : {};
  const fromServer = Object.hasOwn(signatures, serverName) ? signatures[serverName] : undefined;
  return isObject(fromServer) && Object.keys(fromServer).length > 0;
}

export function checkMemberEvent(event: PDU, ctx: MemberContext, verifiers: MemberSignatureVerifiers): AuthResult {
  const content = contentOf(event);
  const target = event.state_key;
  if (typeof target !== 'string') return deny('m.room.member event has no state_key');
  if (content.membership === undefined) return deny('m.room.member event has no membership');
  const membership = content.membership;

  if (Object.hasOwn(content, 'join_authorised_via_users_server')) {
    const authoriser = content.join_authorised_via_users_server;
    if (!isValidUserId(authoriser)) return deny('join_authorised_via_users_server is not a valid user ID');
    const server = domainOf(authoriser) as string;
    const signedBy = verifiers.isSignedByServer ?? defaultIsSignedByServer;
    if (!signedBy(event, server)) return deny(`event is not signed by ${server}, the server of join_authorised_via_users_server`);
  }

  switch (membership) {
    case 'join':
      return checkJoin(event, target, content, ctx);
    case 'invite':
      return checkInvite(event, target, content, ctx, verifiers);
    case 'leave':
      return checkLeave(event, target, ctx);
    case 'ban':
      return checkBan(event, target, ctx);
    case 'knock':
      return checkKnock(event, target, ctx);
    default:
      return deny(`unknown membership ${JSON.stringify(membership)}`);
  }
}

/** A room without `m.room.join_rules` behaves as invite-only (as Synapse and ruma implement it). */
function joinRuleOf(ctx: MemberContext): string {
  const rule = contentOf(ctx.authEvents.get('m.room.join_rules', '')).join_rule;
  return typeof rule === 'string' ? rule : 'invite';
}

const memberOf = (ctx: MemberContext, userId: string): string => membershipOf(ctx.authEvents.get('m.room.member', userId));

function checkJoin(event: PDU, target: string, content: Record<string, unknown>, ctx: MemberContext): AuthResult {
  const { create } = ctx.authEvents;
  // The creator's own join right after the create event. Needs the create
  // event's ID: from the event itself, or in v12 from the room ID.
  const createId =
    typeof create.event_id === 'string'
      ? create.event_id
      : ctx.rules.roomIdFromCreateEvent && typeof event.room_id === 'string'
        ? createEventIdFromRoomId(event.room_id)
        : undefined;
  // v10: content.creator; v11+: the create event's sender (listed first in v12, before additional creators).
  const firstCreator = creatorsOf(create, ctx.rules)[0];
  if (
    createId !== undefined &&
    Array.isArray(event.prev_events) &&
    event.prev_events.length === 1 &&
    event.prev_events[0] === createId &&
    target === firstCreator
  ) {
    return allow;
  }

  if (event.sender !== target) return deny('cannot join on behalf of another user');
  const current = memberOf(ctx, target);
  if (current === 'ban') return deny('sender is banned from the room');

  const joinRule = joinRuleOf(ctx);
  if (joinRule === 'invite' || (joinRule === 'knock' && ctx.rules.knocking)) {
    if (current === 'invite' || current === 'join') return allow;
    return deny(`join rule is ${joinRule} and sender is not invited`);
  }
  if ((joinRule === 'restricted' && ctx.rules.restrictedJoins) || (joinRule === 'knock_restricted' && ctx.rules.knockRestricted)) {
    if (current === 'invite' || current === 'join') return allow;
    const authoriser = content.join_authorised_via_users_server;
    if (typeof authoriser !== 'string') return deny(`join rule is ${joinRule} and no join_authorised_via_users_server`);
    if (memberOf(ctx, authoriser) !== 'join') return deny(`join authoriser ${authoriser} is not joined to the room`);
    const level = ctx.levelOf(authoriser);
    const needed = actionPowerLevel('invite', ctx.authEvents.get('m.room.power_levels', ''));
    if (level < needed) return deny(`join authoriser ${authoriser} cannot invite (needs ${needed}, has ${level})`);
    return allow;
  }
  if (joinRule === 'public') return allow;
  return deny(`join rule ${JSON.stringify(joinRule)} does not allow joining`);
}

function checkThirdPartyInvite(
  event: PDU,
  target: string,
  invite: unknown,
  ctx: MemberContext,
  verifiers: MemberSignatureVerifiers,
): AuthResult {
  if (memberOf(ctx, target) === 'ban') return deny('target is banned from the room');
  const signed = isObject(invite) ? invite.signed : undefined;
  if (!isObject(signed)) return deny('third_party_invite has no signed object');
  if (typeof signed.mxid !== 'string' || typeof signed.token !== 'string') {
    return deny('third_party_invite.signed needs mxid and token');
  }
  if (signed.mxid !== target) return deny('third_party_invite mxid does not match state_key');
  const tokenEvent = ctx.authEvents.get('m.room.third_party_invite', signed.token);
  if (!tokenEvent) return deny('no m.room.third_party_invite event for the token');
  if (tokenEvent.sender !== event.sender) return deny('sender did not send the m.room.third_party_invite');

  const tokenContent = contentOf(tokenEvent);
  const keys: string[] = [];
  if (typeof tokenContent.public_key === 'string') keys.push(tokenContent.public_key);
  if (Array.isArray(tokenContent.public_keys)) {
    for (const entry of tokenContent.public_keys) {
      // The spec's objects carry `public_key`; a bare string is tolerated.
      if (typeof entry === 'string') keys.push(entry);
      else if (isObject(entry) && typeof entry.public_key === 'string') keys.push(entry.public_key);
    }
  }
  const verify = verifiers.verifyThirdPartyInviteSignature;
  if (!verify) return deny('cannot verify third_party_invite signature (no verifier supplied)');
  if (keys.some((key) => verify(signed, key))) return allow;
  return deny('third_party_invite signature does not match any public key of the invite');
}

function checkInvite(
  event: PDU,
  target: string,
  content: Record<string, unknown>,
  ctx: MemberContext,
  verifiers: MemberSignatureVerifiers,
): AuthResult {
  if (Object.hasOwn(content, 'third_party_invite')) {
    return checkThirdPartyInvite(event, target, content.third_party_invite, ctx, verifiers);
  }
  if (memberOf(ctx, event.sender) !== 'join') return deny('sender is not joined to the room');
  const current = memberOf(ctx, target);
  if (current === 'join') return deny('target is already joined');
  if (current === 'ban') return deny('target is banned from the room');
  return requireLevel(ctx, event.sender, 'invite');
}

function requireLevel(ctx: MemberContext, sender: string, action: 'invite' | 'kick' | 'ban'): AuthResult {
  const level = ctx.levelOf(sender);
  const needed = actionPowerLevel(action, ctx.authEvents.get('m.room.power_levels', ''));
  return level >= needed ? allow : deny(`power level too low to ${action} (needs ${needed}, has ${level})`);
}

function checkLeave(event: PDU, target: string, ctx: MemberContext): AuthResult {
  if (event.sender === target) {
    const current = memberOf(ctx, target);
    if (current === 'invite' || current === 'join' || current === 'knock') return allow;
    return deny(`cannot leave with membership ${current}`);
  }
  if (memberOf(ctx, event.sender) !== 'join') return deny('sender is not joined to the room');
  const powerLevels = ctx.authEvents.get('m.room.power_levels', '');
  const senderLevel = ctx.levelOf(event.sender);
  if (memberOf(ctx, target) === 'ban') {
    const banLevel = actionPowerLevel('ban', powerLevels);
    if (senderLevel < banLevel) return deny(`power level too low to unban (needs ${banLevel}, has ${senderLevel})`);
  }
  const kickLevel = actionPowerLevel('kick', powerLevels);
  if (senderLevel < kickLevel) return deny(`power level too low to kick (needs ${kickLevel}, has ${senderLevel})`);
  const targetLevel = ctx.levelOf(target);
  if (targetLevel >= senderLevel) return deny(`cannot kick a user with power level ${targetLevel} (own ${senderLevel})`);
  return allow;
}

function checkBan(event: PDU, target: string, ctx: MemberContext): AuthResult {
  if (memberOf(ctx, event.sender) !== 'join') return deny('sender is not joined to the room');
  const needed = requireLevel(ctx, event.sender, 'ban');
  if (!needed.allowed) return needed;
  const senderLevel = ctx.levelOf(event.sender);
  const targetLevel = ctx.levelOf(target);
  if (targetLevel >= senderLevel) return deny(`cannot ban a user with power level ${targetLevel} (own ${senderLevel})`);
  return allow;
}

function checkKnock(event: PDU, target: string, ctx: MemberContext): AuthResult {
  const joinRule = joinRuleOf(ctx);
  const knockable = (joinRule === 'knock' && ctx.rules.knocking) || (joinRule === 'knock_restricted' && ctx.rules.knockRestricted);
  if (!knockable) return deny(`join rule ${JSON.stringify(joinRule)} does not allow knocking`);
  if (event.sender !== target) return deny('cannot knock on behalf of another user');
  const current = memberOf(ctx, event.sender);
  if (current === 'ban' || current === 'invite' || current === 'join') return deny(`cannot knock with membership ${current}`);
  return allow;
}

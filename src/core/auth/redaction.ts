/**
 * Handling redactions (the check after authorization). The auth rules let any
 * sender with the `m.room.redaction` send level send a redaction; whether it
 * is carried out is decided here once both events are known: the sender needs
 * the redact level, or must be on the same server as the redacted event's
 * sender. Also where the redacted event ID lives per room version.
 */
import type { PDU } from '../types.js';
import { roomVersionRules } from '../room-versions.js';
import { actionPowerLevel, powerLevelOf } from './power-levels.js';
import { contentOf, domainOf } from './values.js';

/** The event a redaction targets: top-level `redacts` in v10, `content.redacts` from v11. */
export function redactionTarget(redaction: PDU, roomVersion: string): string | undefined {
  const redacts = roomVersionRules(roomVersion).redactsInContent ? contentOf(redaction).redacts : redaction.redacts;
  return typeof redacts === 'string' ? redacts : undefined;
}

/** Should an (authorized) redaction be applied to `redacted`? Uses the power levels in force at the redaction. */
export function redactionPermitted(
  redaction: PDU,
  redacted: PDU,
  powerLevelsEvent: PDU | undefined,
  createEvent: PDU | undefined,
  roomVersion: string,
): boolean {
  const level = powerLevelOf(redaction.sender, powerLevelsEvent, createEvent, roomVersion);
  if (level >= actionPowerLevel('redact', powerLevelsEvent)) return true;
  const server = domainOf(redaction.sender);
  return server !== undefined && server === domainOf(redacted.sender);
}

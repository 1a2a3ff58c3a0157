/**
 * What the federation API's route modules are given: the shared context,
 * the room engine, the read helpers, the EDU handler, and the hook that tells
 * the replication layer about PDUs with missing parents.
 */
import type { HomeserverContext } from '../context.js';
import type { RoomEngine } from '../rooms/types.js';
import type { EduHandler } from './edus.js';
import type { FederationReads } from './reads.js';

export interface FederationDeps {
  readonly ctx: HomeserverContext;
  readonly rooms: RoomEngine;
  readonly reads: FederationReads;
  readonly edus: EduHandler;
  /** Announces a PDU whose prev or auth events are unknown (ReplicationPort.onMissingPrevs). */
  missingPrevs(origin: string, roomId: string, pdu: object, missing: string[]): void;
}

/**
 * Transactions (server-server API "Transactions"): the push path. PDUs go
 * through the room engine's receive checks (any peer may relay signed PDUs);
 * those with unknown parents are announced to the replication layer, which
 * fetches and retries. EDUs go to edus.ts, accepted only about the origin's
 * own users. The answer lists each PDU's result, as the spec asks.
 */
import { setOwn } from '../own-keys.js';
import type { RouteDefinition } from '../http/router.js';
import type { FederationDeps } from './deps.js';
import { arrayField, federationRoute } from './route.js';

/** The spec's bounds on one transaction. */
const MAX_PDUS = 50;
const MAX_EDUS = 100;

export function transactionRoutes({ ctx, rooms, edus, missingPrevs }: FederationDeps): RouteDefinition[] {
  return [
    // PUT /_matrix/federation/v1/send/{txnId} (spec "Transactions")
    federationRoute('PUT', '/v1/send/{txnId}', async ({ json, origin }) => {
      const body = await json();
      const pdus = arrayField(body, 'pdus', MAX_PDUS);
      const edusIn = arrayField(body, 'edus', MAX_EDUS);
      const outcomes = await rooms.receivePdus(pdus, origin);
      const result: Record<string, Record<string, string>> = {};
      outcomes.forEach((outcome, i) => {
        if (outcome.outcome === 'missingPrevs' && outcome.roomId) missingPrevs(origin, outcome.roomId, pdus[i] as object, outcome.missing ?? []);
        if (outcome.eventId === undefined) return;
        const failed = outcome.outcome === 'invalid' || outcome.outcome === 'rejected' || outcome.outcome === 'unknownRoom' || outcome.outcome === 'missingPrevs';
        setOwn(result, outcome.eventId, failed ? { error: `${outcome.outcome}${outcome.reason ? `: ${outcome.reason}` : ''}` } : {});
      });
      for (const edu of edusIn) {
        const dropped = await edus.receive(edu, origin);
        if (dropped) ctx.log.warn(`EDU from ${origin} dropped: ${dropped}`);
      }
      return { pdus: result };
    }),
  ];
}

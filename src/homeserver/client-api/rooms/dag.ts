/**
 * The room's recent event graph, for the chat app's history graph (Hometab's own unstable endpoint: the
 * client-server API gives events in one linear order and never their prev_events, and a picture of forks
 * and merges needs exactly those). The newest `limit` timeline events in stream order, each with its
 * prev_events, sender, origin server (the sender's server, the one that signed it), type, depth and stream
 * position. Readers are decided by the access module (access/room-access.ts) as for /messages: members,
 * readers of world_readable rooms, former members up to their departure; each event obeys history
 * visibility, and an event the user may not see is left out (its children keep its ID in prev_events, so
 * the graph shows that something is hidden, not what).
 */
import { serverNameOf } from '../../../core/index.js';
import { visibleEvents, withinHorizon } from '../../access/room-access.js';
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { limitParam, roomIdParam } from '../../http/params.js';
import type { HomeserverServices } from '../../services.js';
import { withReadGrant } from './common.js';

export const DAG_PREFIX = '/_matrix/client/unstable/org.hometab';
/** An empty graph is no picture: at least one event. */
const DAG_LIMIT = { fallback: 100, min: 1, max: 500 };

/** One node of the answer. */
export interface DagNode {
  event_id: string;
  prev_events: string[];
  sender: string;
  origin: string;
  type: string;
  depth: number;
  stream_ordering: number;
}

export function dagRoutes(services: HomeserverServices): RouteDefinition[] {
  return [
    // GET /_matrix/client/unstable/org.hometab/rooms/{roomId}/dag?limit=N
    clientRoute(
      'GET',
      '/rooms/{roomId}/dag',
      'required',
      async (ctx) => {
        const roomId = roomIdParam(ctx.params.roomId);
        const limit = limitParam(ctx.query.get('limit'), DAG_LIMIT);
        const nodes = await withReadGrant(services, roomId, ctx.requester.userId, async (reader, grant) => {
          let records = await reader.txn.timeline.range(roomId, { dir: 'b', limit, ...(grant.horizon?.streamOrdering !== undefined ? { from: grant.horizon.streamOrdering } : {}) });
          records = records.filter((r) => withinHorizon(grant, r) && !r.rejected && !r.outlier).reverse();
          return visibleEvents(reader, roomId, grant.view, records);
        });
        return {
          events: nodes.map(
            (record): DagNode => ({
              event_id: record.eventId,
              prev_events: [...record.event.prev_events],
              sender: record.event.sender,
              origin: serverNameOf(record.event.sender),
              type: record.event.type,
              depth: record.depth,
              stream_ordering: record.streamOrdering ?? 0,
            }),
          ),
        };
      },
      { prefixes: [DAG_PREFIX] },
    ),
  ];
}

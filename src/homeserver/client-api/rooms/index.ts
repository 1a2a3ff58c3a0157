/**
 * Routes of the rooms area of the client-server API: creating rooms,
 * membership, sending and redacting events, reading state, members and
 * events, aliases and the public room directory. One file per area; the room
 * engine (rooms/engine.ts) does the work behind them.
 */
import type { RouteModule } from '../../services.js';
import { createRoutes } from './create.js';
import { dagRoutes } from './dag.js';
import { directoryRoutes } from './directory.js';
import { membershipRoutes } from './membership.js';
import { readRoutes } from './read.js';
import { sendRoutes } from './send.js';

export const roomsRoutes: RouteModule = (services) => [
  ...createRoutes(services),
  ...membershipRoutes(services),
  ...sendRoutes(services),
  ...readRoutes(services),
  ...directoryRoutes(services),
  ...dagRoutes(services),
];

/**
 * Creating rooms (client-server API "Room creation"). The request is checked
 * here for types; what it means (presets, event order, versions) is the room
 * engine's createRoom.
 */
import { clientRoute, type RouteDefinition } from '../../http/router.js';
import { parseCreateRoomRequest } from '../../rooms/create-room.js';
import type { HomeserverServices } from '../../services.js';

export function createRoutes({ rooms }: HomeserverServices): RouteDefinition[] {
  return [
    // POST /_matrix/client/v3/createRoom
    clientRoute('POST', '/createRoom', 'required', async (ctx) => {
      const request = parseCreateRoomRequest(await ctx.json());
      const { roomId } = await rooms.createRoom(ctx.requester.userId, request);
      return { room_id: roomId };
    }),
  ];
}

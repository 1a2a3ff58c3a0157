/**
 * The hash route: `#/join/<room id>?via=<server>` (an invite link) or nothing. Parsed from the location's
 * hash, which is untrusted input: anything that is not a well-formed join route is ignored.
 */

export interface JoinRoute {
  roomId: string;
  via: string[];
}

/** The join route of a hash, or undefined. */
export function parseJoinRoute(hash: string): JoinRoute | undefined {
  const match = /^#\/join\/([^?]+)(?:\?(.*))?$/.exec(hash);
  if (!match) return undefined;
  let roomId: string;
  try {
    roomId = decodeURIComponent(match[1]!);
  } catch {
    return undefined;
  }
  if (!roomId.startsWith('!') || roomId.length > 255) return undefined;
  const via = new URLSearchParams(match[2] ?? '').getAll('via').filter((server) => server.length > 0 && server.length <= 255);
  return { roomId, via };
}

export class RouteState {
  join = $state<JoinRoute | undefined>(undefined);

  constructor(hash: string) {
    this.join = parseJoinRoute(hash);
  }

  update(hash: string): void {
    this.join = parseJoinRoute(hash);
  }
}

/**
 * The history graph's layout, as a pure function: events (oldest first, as the homeserver's unstable
 * `/dag` endpoint answers) become rows, and branches become lanes, the way `git log --graph` draws them.
 * A lane continues while each event builds on the previous one; a second child of one parent (a fork:
 * two servers wrote while apart) opens a new lane; an event naming several parents (a merge) closes the
 * lanes of the parents it joins. Each node keeps the server that authored it, so the picture can colour
 * branches by server. Parents outside the window (older, or hidden from this user) are counted, not drawn.
 */

export interface DagEvent {
  eventId: string;
  prevEvents: readonly string[];
  sender: string;
  origin: string;
  type: string;
}

export interface LaidOutNode extends DagEvent {
  row: number;
  lane: number;
  /** Index into `servers`. */
  server: number;
  /** More than one event of the window builds on this one. */
  fork: boolean;
  /** This event joins more than one parent of the window. */
  merge: boolean;
  /** Parents not in the window. */
  hiddenParents: number;
}

export interface LaidOutEdge {
  from: { row: number; lane: number };
  to: { row: number; lane: number };
  /** The child's server, which colours the edge. */
  server: number;
}

export interface DagLayout {
  nodes: LaidOutNode[];
  edges: LaidOutEdge[];
  lanes: number;
  /** Authoring servers in order of first appearance. */
  servers: string[];
  forks: number;
  merges: number;
}

/** Orders events so that every parent in the set comes before its children, otherwise keeping the given order. */
function parentsFirst(events: readonly DagEvent[]): DagEvent[] {
  const byId = new Map(events.map((e) => [e.eventId, e]));
  const placed = new Set<string>();
  const visiting = new Set<string>();
  const out: DagEvent[] = [];
  const visit = (event: DagEvent) => {
    if (placed.has(event.eventId) || visiting.has(event.eventId)) return;
    visiting.add(event.eventId);
    for (const parent of event.prevEvents) {
      const known = byId.get(parent);
      if (known) visit(known);
    }
    visiting.delete(event.eventId);
    placed.add(event.eventId);
    out.push(event);
  };
  for (const event of events) visit(event);
  return out;
}

export function layoutDag(input: readonly DagEvent[]): DagLayout {
  // Duplicates (a hostile or confused answer) keep their first occurrence.
  const unique = new Map<string, DagEvent>();
  for (const event of input) if (!unique.has(event.eventId)) unique.set(event.eventId, event);
  const events = parentsFirst([...unique.values()]);

  const servers: string[] = [];
  const serverIndex = new Map<string, number>();
  /** lanes[i] is the event at the tip of lane i, still open for a child; undefined when the lane is free. */
  const lanes: Array<string | undefined> = [];
  const placed = new Map<string, LaidOutNode>();
  const nodes: LaidOutNode[] = [];
  const edges: LaidOutEdge[] = [];
  let laneCount = 0;

  const freeLane = () => {
    const index = lanes.indexOf(undefined);
    return index === -1 ? lanes.length : index;
  };

  for (const [row, event] of events.entries()) {
    // Parents already drawn; a parent that is not (outside the window, or a cycle in a confused answer) is hidden.
    const parents = [...new Set(event.prevEvents)].filter((id) => placed.has(id));
    // Continue the lowest lane whose tip is one of this event's parents; else open a lane.
    const openParentLanes = parents.map((id) => lanes.indexOf(id)).filter((lane) => lane !== -1).sort((x, y) => x - y);
    const lane = openParentLanes[0] ?? freeLane();
    // A merge closes the other lanes it joins.
    for (const other of openParentLanes.slice(1)) lanes[other] = undefined;
    lanes[lane] = event.eventId;
    laneCount = Math.max(laneCount, lane + 1);

    let server = serverIndex.get(event.origin);
    if (server === undefined) {
      server = servers.push(event.origin) - 1;
      serverIndex.set(event.origin, server);
    }
    const node: LaidOutNode = {
      ...event,
      row,
      lane,
      server,
      fork: false,
      merge: parents.length > 1,
      hiddenParents: new Set(event.prevEvents).size - parents.length,
    };
    nodes.push(node);
    placed.set(event.eventId, node);
    for (const parent of parents) {
      const from = placed.get(parent)!;
      edges.push({ from: { row: from.row, lane: from.lane }, to: { row, lane }, server });
    }
  }

  const children = new Map<number, number>();
  for (const edge of edges) children.set(edge.from.row, (children.get(edge.from.row) ?? 0) + 1);
  for (const node of nodes) node.fork = (children.get(node.row) ?? 0) > 1;

  return {
    nodes,
    edges,
    lanes: laneCount,
    servers,
    forks: nodes.filter((n) => n.fork).length,
    merges: nodes.filter((n) => n.merge).length,
  };
}

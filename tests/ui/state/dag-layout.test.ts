// The history graph's layout (src/ui/state/dag-layout.ts): lanes per branch, a fork opens a lane, a merge
// closes it, servers in order of appearance; parents come before children whatever order the input has.
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { layoutDag, type DagEvent } from '../../../src/ui/state/dag-layout.js';

const fixture = async (): Promise<DagEvent[]> =>
  JSON.parse(await readFile(new URL('./fixtures/dag-fork-merge.json', import.meta.url), 'utf8')).events;

const ev = (eventId: string, prevEvents: string[], origin = 'aaa'): DagEvent => ({ eventId, prevEvents, origin, sender: `@u:${origin}`, type: 'm.room.message' });

describe('layoutDag', () => {
  it('draws a fork as a second lane and the merge back into the first', async () => {
    const layout = layoutDag(await fixture());
    const at = new Map(layout.nodes.map((n) => [n.eventId, n]));
    expect(layout.lanes).toBe(2);
    expect(layout.servers).toEqual(['aaa', 'bbb']);
    expect([at.get('$base')!.lane, at.get('$a1')!.lane, at.get('$a2')!.lane]).toEqual([0, 0, 0]);
    expect([at.get('$b1')!.lane, at.get('$b2')!.lane]).toEqual([1, 1]);
    // The merge continues the lowest of its parents' lanes; the branch after it stays there.
    expect(at.get('$m')!.lane).toBe(0);
    expect(at.get('$after')!.lane).toBe(0);
    expect(at.get('$base')!.fork).toBe(true);
    expect(at.get('$m')!.merge).toBe(true);
    expect(layout.forks).toBe(1);
    expect(layout.merges).toBe(1);
    expect(at.get('$b1')!.server).toBe(1);
    expect(at.get('$base')!.hiddenParents).toBe(1);
    expect(at.get('$a1')!.hiddenParents).toBe(0);
    // One edge per parent in the window, from the parent's place to the child's.
    expect(layout.edges).toHaveLength(7);
    expect(layout.edges).toContainEqual({ from: { row: at.get('$b2')!.row, lane: 1 }, to: { row: at.get('$m')!.row, lane: 0 }, server: 1 });
  });

  it('a lane freed by a merge is reused by the next fork', () => {
    const layout = layoutDag([ev('$r', []), ev('$x', ['$r']), ev('$y', ['$r'], 'bbb'), ev('$m', ['$x', '$y']), ev('$p', ['$m']), ev('$q', ['$m'], 'ccc')]);
    const lanes = Object.fromEntries(layout.nodes.map((n) => [n.eventId, n.lane]));
    expect(lanes).toEqual({ $r: 0, $x: 0, $y: 1, $m: 0, $p: 0, $q: 1 });
    expect(layout.lanes).toBe(2);
    expect(layout.servers).toEqual(['aaa', 'bbb', 'ccc']);
  });

  it('a straight history is one lane; children given before parents are put after them', () => {
    const layout = layoutDag([ev('$c', ['$b']), ev('$b', ['$a']), ev('$a', [])]);
    expect(layout.nodes.map((n) => [n.eventId, n.row, n.lane])).toEqual([['$a', 0, 0], ['$b', 1, 0], ['$c', 2, 0]]);
    expect(layout.forks + layout.merges).toBe(0);
  });

  it('survives duplicates, self-references and cycles in a confused answer', () => {
    const layout = layoutDag([ev('$a', ['$b']), ev('$b', ['$a']), ev('$a', []), ev('$s', ['$s', '$s'])]);
    expect(layout.nodes.map((n) => n.eventId).sort()).toEqual(['$a', '$b', '$s']);
    expect(layout.nodes.every((n) => Number.isInteger(n.lane) && n.lane >= 0)).toBe(true);
  });

  it('an empty window is an empty picture', () => {
    expect(layoutDag([])).toEqual({ nodes: [], edges: [], lanes: 0, servers: [], forks: 0, merges: 0 });
  });
});

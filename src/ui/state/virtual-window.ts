/**
 * Which rows of a long list to put in the DOM: rows have measured heights (an estimate until measured);
 * given the scroll offset and the viewport's height, `range` returns the rows overlapping the viewport
 * plus an overscan margin, and the space the rows before and after take, so the list keeps its full
 * scroll height with only visible rows rendered. `offsetOf` lets a view keep a row fixed on screen when
 * rows are prepended or re-measured above it.
 */
export interface VisibleRange {
  start: number;
  /** Exclusive. */
  end: number;
  before: number;
  after: number;
}

export class RowHeights {
  readonly #heights = new Map<string, number>();
  constructor(readonly estimate = 64) {}

  heightOf(id: string): number {
    return this.#heights.get(id) ?? this.estimate;
  }

  /** Records a measured height; returns the change from what was assumed. */
  measure(id: string, height: number): number {
    const previous = this.heightOf(id);
    this.#heights.set(id, height);
    return height - previous;
  }

  /** Forgets the rows not in `ids` (rows cut from a long list would otherwise stay here for good). */
  retain(ids: readonly string[]): void {
    const listed = new Set(ids);
    for (const id of this.#heights.keys()) if (!listed.has(id)) this.#heights.delete(id);
  }

  offsetOf(ids: readonly string[], id: string): number | undefined {
    let offset = 0;
    for (const each of ids) {
      if (each === id) return offset;
      offset += this.heightOf(each);
    }
    return undefined;
  }

  range(ids: readonly string[], scrollTop: number, viewport: number, overscan: number): VisibleRange {
    const top = Math.max(0, scrollTop - overscan);
    const bottom = scrollTop + viewport + overscan;
    let offset = 0;
    let start = ids.length;
    let before = 0;
    let end = ids.length;
    for (let i = 0; i < ids.length; i++) {
      const height = this.heightOf(ids[i]!);
      if (start === ids.length && offset + height > top) {
        start = i;
        before = offset;
      }
      offset += height;
      if (start !== ids.length && offset >= bottom) {
        end = i + 1;
        break;
      }
    }
    let after = 0;
    for (let i = end; i < ids.length; i++) after += this.heightOf(ids[i]!);
    if (start === ids.length) before = offset;
    return { start, end, before, after };
  }
}

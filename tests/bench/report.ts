/**
 * Benchmark rows and their table: every figure is printed beside the limit it
 * is measured against in the same run (a raw platform rate, or a goal).
 */
export interface BenchRow {
  /** Where it ran: "node", "chromium". */
  where: string;
  figure: string;
  value: number;
  unit: string;
  /** What the figure is compared with, measured in the same run or a stated goal. */
  limit?: { label: string; value: number; unit: string };
  /** Human verdict against the goal, e.g. "94% of raw (goal >= 80%)". */
  note?: string;
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString('en-US');
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

export function formatTable(rows: BenchRow[]): string {
  const header = ['where', 'figure', 'value', 'limit (same run)', 'note'];
  const body = rows.map((r) => [
    r.where,
    r.figure,
    `${fmt(r.value)} ${r.unit}`,
    r.limit ? `${r.limit.label}: ${fmt(r.limit.value)} ${r.limit.unit}` : '',
    r.note ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

/** Runs `op` repeatedly for about `ms` milliseconds (after a warm-up) and returns operations per second. */
export async function ratePerSecond(op: () => Promise<unknown> | unknown, ms = 1000, opsPerCall = 1): Promise<number> {
  const warmUntil = performance.now() + Math.min(200, ms / 5);
  while (performance.now() < warmUntil) await op();
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    await op();
    calls++;
    now = performance.now();
  }
  return (calls * opsPerCall * 1000) / (now - start);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

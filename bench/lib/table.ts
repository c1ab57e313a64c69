/**
 * The one table: scenario | pollgate (median, min–max) | baseline (median, min–max) | ratio.
 * Rendered as Markdown so it can be pasted into bench/README.md as it is.
 */
import type { Row } from './scenario.ts';
import { fmtSpread } from './stats.ts';

export function ratioText(row: Row): string {
  if (!row.pollgate || !row.baseline) return '—';
  const r = row.pollgate.median / row.baseline.median;
  let text = `${r.toFixed(2)}×`;
  if (row.pairRatios && row.pairRatios.length > 1) {
    text += ` (pairs ${Math.min(...row.pairRatios).toFixed(2)}–${Math.max(...row.pairRatios).toFixed(2)})`;
  }
  return text;
}

export function renderTable(rows: Row[]): string {
  const header = ['scenario', 'pollgate median (min–max)', 'baseline median (min–max)', 'ratio'];
  const body = rows.map((row) => [
    row.failed ? `${row.label} ⚠ FAILED` : row.label,
    row.pollgate ? fmtSpread(row.pollgate) : `skipped${row.skipped ? `: ${row.skipped}` : ''}`,
    row.baseline ? fmtSpread(row.baseline) : '—',
    ratioText(row),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

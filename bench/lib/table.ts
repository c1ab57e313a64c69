/**
 * The one table: scenario | pollgate (median, min–max) | baseline or peer (median, min–max,
 * named in the cell) | ratio | target | met?. Rendered as Markdown so it can be pasted into
 * bench/README.md as it is.
 */
import type { Row } from './scenario.ts';
import { fmt, fmtSpread } from './stats.ts';

export function ratioText(row: Row): string {
  if (row.pollgate && !row.baseline && row.targetValue !== undefined) {
    return `${(row.pollgate.median / row.targetValue).toFixed(2)}× target`;
  }
  if (!row.pollgate || !row.baseline) return '—';
  const r = row.pollgate.median / row.baseline.median;
  let text = `${r.toFixed(2)}×`;
  if (row.pairRatios && row.pairRatios.length > 1) {
    text += ` (pairs ${Math.min(...row.pairRatios).toFixed(2)}–${Math.max(...row.pairRatios).toFixed(2)})`;
  }
  return text;
}

function metText(row: Row): string {
  if (row.failed) return 'FAILED';
  if (row.target === undefined) return '';
  if (row.met === true) return 'yes';
  if (row.met === false) return 'NO';
  return 'n/a';
}

export function renderTable(rows: Row[]): string {
  const header = ['scenario', 'pollgate median (min–max)', 'baseline / peer median (min–max)', 'ratio', 'target', 'met?'];
  const body = rows.map((row) => [
    row.failed ? `${row.label} ⚠ FAILED` : row.label,
    row.pollgate ? fmtSpread(row.pollgate) : `skipped${row.skipped ? `: ${row.skipped}` : ''}`,
    row.baseline
      ? `${row.peer ? `${row.peer}: ` : ''}${fmtSpread(row.baseline)}`
      : row.baselineText !== undefined
        ? row.baselineText
        : row.targetValue !== undefined
          ? `(target ${fmt(row.targetValue)})`
          : '—',
    ratioText(row),
    row.target ?? '—',
    metText(row),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

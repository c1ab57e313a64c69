/**
 * How admin commands print what the API answered: JSON for scripts (`--json`, or whenever stdout
 * is not a terminal, so pipes into jq keep working), readable tables and key/value blocks for
 * people at a terminal (`--table` forces them).
 */
import type { Command } from 'commander';
import { addConnectionOptions, printJson, UsageError, write } from './common.ts';

export interface OutputOptions {
  json?: boolean;
  table?: boolean;
}

export function addOutputOptions(cmd: Command): Command {
  return cmd.option('--json', 'print JSON (the default when stdout is not a terminal)').option('--table', 'print tables for people (the default at a terminal)');
}

/** An admin command: --url, --key, --json, --table. */
export function adminCommand(cmd: Command): Command {
  // Conflicting output flags are refused before anything is asked of the server.
  return addOutputOptions(addConnectionOptions(cmd, 'admin')).hook('preAction', (self) => void wantsJson(self.opts()));
}

export function wantsJson(opts: OutputOptions): boolean {
  if (opts.json && opts.table) throw new UsageError('--json and --table exclude each other');
  if (opts.json) return true;
  if (opts.table) return false;
  return !process.stdout.isTTY;
}

export type Cell = string | number | boolean | null | undefined;

/** Columns padded to their widest cell; an empty list says so. */
export function table(headers: string[], rows: Cell[][], empty = '(none)'): string {
  if (rows.length === 0) return `${empty}\n`;
  const text = rows.map((row) => row.map(cell));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return `${[line(headers.map((h) => h.toUpperCase())), ...text.map(line)].join('\n')}\n`;
}

/** "label: value" lines, labels aligned. */
export function block(pairs: Array<[string, Cell]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return `${pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${cell(v)}`).join('\n')}\n`;
}

function cell(value: Cell): string {
  if (value === null || value === undefined || value === '') return '-';
  return String(value);
}

/** Prints value as JSON or, for people, as render(value) says. */
export function print<T>(opts: OutputOptions, value: T, render: (value: T) => string): Promise<void> {
  return wantsJson(opts) ? printJson(value) : write(process.stdout, render(value));
}

/** "3 min ago" style, for people; the ISO time stays in --json. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  const abs = Math.abs(s);
  const span = abs < 90 ? `${abs} s` : abs < 5400 ? `${Math.round(abs / 60)} min` : abs < 172_800 ? `${Math.round(abs / 3600)} h` : `${Math.round(abs / 86_400)} d`;
  return s >= 0 ? `${span} ago` : `in ${span}`;
}

/**
 * Summarises a V8 .cpuprofile (node --cpu-prof) into the few lines worth reading: the top
 * functions by self time, the same grouped by file/package, and the inclusive time of
 * pollgate's own functions. "(idle)" is left out of the percentages: the server idles while
 * the baseline is being measured, and idle time says nothing about where the work goes.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './proc.ts';

export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  ms: number;
  percent: number;
}

export interface ProfileSummary {
  file: string;
  /** Sampled time at the start that was left out (the server starting up). */
  skippedMs: number;
  /** Sampled time that was not idle. */
  busyMs: number;
  idleMs: number;
  topSelf: ProfileEntry[];
  topFiles: ProfileEntry[];
  /** Inclusive time of functions in src/ (time with the function anywhere on the stack). */
  topSrcInclusive: ProfileEntry[];
}

function shortUrl(url: string): string {
  let u = url.replace(/^file:\/\//, '');
  const root = ROOT.endsWith('/') ? ROOT : `${ROOT}/`;
  if (u.startsWith(root)) u = u.slice(root.length);
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm + 'node_modules/'.length);
  return u;
}

function frameName(f: CallFrame): string {
  const fn = f.functionName || '(anonymous)';
  if (!f.url) return fn;
  const url = shortUrl(f.url);
  // tsx hands V8 its transformed code, so line numbers in src/ say nothing: name the file only.
  return url.startsWith('src/') ? `${fn} ${url}` : `${fn} ${url}:${f.lineNumber + 1}`;
}

/** "hono/dist/…" → "hono"; "src/store/writer.ts" stays; native/V8 buckets stay as named. */
function fileGroup(f: CallFrame): string {
  if (!f.url) return f.functionName.startsWith('(') ? f.functionName : '(native)';
  const u = shortUrl(f.url);
  if (u.startsWith('node:')) return 'node: internals';
  if (u.startsWith('src/') || u.startsWith('bench/')) return u;
  const parts = u.split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

function top(map: Map<string, number>, busy: number, n: number): ProfileEntry[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: us / 1000, percent: (100 * us) / busy }));
}

/** skipFirstMs: leave out the samples of the first ms (start-up: module loading through tsx). */
export function summarizeProfile(file: string, opts: { skipFirstMs?: number; top?: number } = {}): ProfileSummary {
  const n = opts.top ?? 15;
  const skipUs = (opts.skipFirstMs ?? 0) * 1000;
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);

  // Sample i lasts until sample i+1.
  const selfUs = new Map<number, number>();
  let clock = 0;
  let skipped = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    clock += profile.timeDeltas[i] ?? 0;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (clock < skipUs) {
      skipped += dt;
      continue;
    }
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }

  let idle = 0;
  let busy = 0;
  const bySelf = new Map<string, number>();
  const byFile = new Map<string, number>();
  const srcInclusive = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    if (node.callFrame.functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const name = frameName(node.callFrame);
    bySelf.set(name, (bySelf.get(name) ?? 0) + us);
    const group = fileGroup(node.callFrame);
    byFile.set(group, (byFile.get(group) ?? 0) + us);
    // Inclusive: once per distinct src/ function on this node's stack.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)!.callFrame;
      if (!shortUrl(f.url).startsWith('src/')) continue;
      const key = frameName(f);
      if (seen.has(key)) continue;
      seen.add(key);
      srcInclusive.set(key, (srcInclusive.get(key) ?? 0) + us);
    }
  }
  return {
    file,
    skippedMs: skipped / 1000,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    topSelf: top(bySelf, busy, n),
    topFiles: top(byFile, busy, n),
    topSrcInclusive: top(srcInclusive, busy, n),
  };
}

/** The biggest .cpuprofile in dir: the main thread's (the loader worker's is small). */
export function mainThreadProfile(dir: string): string {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size);
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  return files[0]!;
}

export function renderProfile(s: ProfileSummary): string {
  const list = (entries: ProfileEntry[]) =>
    entries.map((e) => `  ${e.percent.toFixed(1).padStart(5)}%  ${e.ms.toFixed(0).padStart(7)} ms  ${e.name}`).join('\n');
  return [
    `profile ${s.file}: ${s.busyMs.toFixed(0)} ms busy (left out: idle ${s.idleMs.toFixed(0)} ms, start-up ${s.skippedMs.toFixed(0)} ms)`,
    'top self time, by function:',
    list(s.topSelf),
    'self time by file / package:',
    list(s.topFiles),
    'inclusive time of pollgate functions (src/):',
    list(s.topSrcInclusive),
  ].join('\n');
}

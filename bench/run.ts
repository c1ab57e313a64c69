/**
 * npm run bench [-- SCENARIO… ] [--profile] [--runs N] [--duration S]
 *
 * Runs every scenario (or the named ones), each with its own fresh servers, and prints one
 * table: scenario | pollgate (median, min–max) | baseline (median, min–max) | ratio, the
 * baseline measured in the same run. The results also go to bench/results/latest.json.
 * --profile (or BENCH_CPU_PROF=1) runs the pollgate child under --cpu-prof and prints the
 * top self-time functions; profiles land in bench/results/profiles/.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { scenario as batchPublish } from './batch-publish.ts';
import { armDeadline, isInterrupted, ROOT } from './lib/proc.ts';
import type { Row, Scenario, ScenarioResult } from './lib/scenario.ts';
import { renderTable } from './lib/table.ts';
import { ensureNchan } from './lib/nchan.ts';
import { ensureWrk } from './lib/wrk.ts';
import { scenario as publish } from './publish.ts';
import { scenario as publishHeld } from './publish-held.ts';
import { scenario as push } from './push.ts';
import { scenario as coldstart } from './coldstart.ts';
import { scenario as drain } from './drain.ts';
import { scenario as engines } from './engines.ts';
import { scenario as memory } from './memory.ts';
import { scenario as soak } from './soak.ts';
import { scenario as wake } from './wake.ts';
import { scenario as abVersions } from './ab-versions.ts';

const SCENARIOS: Scenario[] = [publish, batchPublish, wake, memory, publishHeld, drain, push, coldstart, engines, abVersions, soak];
/** Run only when named: the soak (minutes long, not a comparison) and the A/B (it needs a second version). */
const ON_REQUEST = new Set([soak.name, abVersions.name]);
/**
 * Far above the ~12 minutes a full run takes (plus ~2 minutes, once, to build the 10M-event
 * database the cold-start scenario caches): only a wedged bench ever reaches it.
 */
const DEADLINE_MS = 45 * 60_000;

const { values, positionals } = parseArgs({
  options: {
    profile: { type: 'boolean', default: process.env.BENCH_CPU_PROF === '1' },
    runs: { type: 'string', default: process.env.BENCH_RUNS ?? '3' },
    duration: { type: 'string', default: process.env.BENCH_DURATION ?? '5' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowPositionals: true,
});

if (values.help) {
  process.stdout.write(
    `usage: npm run bench -- [${SCENARIOS.map((s) => s.name).join('|')} …] [--profile] [--runs N] [--duration S]\n\n` +
      SCENARIOS.map((s) => `  ${s.name.padEnd(14)} ${s.title}${ON_REQUEST.has(s.name) ? ' (only when named)' : ''}`).join('\n') +
      '\n',
  );
  process.exit(0);
}

const unknown = positionals.filter((p) => !SCENARIOS.some((s) => s.name === p));
if (unknown.length > 0) {
  process.stderr.write(`bench: no scenario ${unknown.map((u) => `"${u}"`).join(', ')}; there are ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
  process.exit(2);
}
const selected = positionals.length === 0 ? SCENARIOS.filter((s) => !ON_REQUEST.has(s.name)) : SCENARIOS.filter((s) => positionals.includes(s.name));
const runs = Number(values.runs);
const durationS = Number(values.duration);
if (!Number.isInteger(runs) || runs < 1 || !(durationS > 0 && durationS <= 60)) {
  process.stderr.write('bench: --runs must be a positive integer and --duration 0 < S ≤ 60 seconds\n');
  process.exit(2);
}
if (runs < 3) process.stderr.write(`bench: --runs ${runs} is below 3; medians of fewer than 3 runs are not worth reporting\n`);

armDeadline(DEADLINE_MS, 'npm run bench');

const resultsDir = join(ROOT, 'bench/results');
const profileDir = values.profile ? join(resultsDir, 'profiles') : undefined;
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;
const log = (message: string) => process.stderr.write(`[${elapsed()}] ${message}\n`);

/** The checked-out commit, read from .git without running git (uncommitted changes not shown). */
function headCommit(): string {
  try {
    const head = readFileSync(join(ROOT, '.git/HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head;
    const ref = head.slice(5);
    const loose = join(ROOT, '.git', ref);
    if (existsSync(loose)) return `${readFileSync(loose, 'utf8').trim().slice(0, 12)} (${ref.replace('refs/heads/', '')})`;
    const packed = readFileSync(join(ROOT, '.git/packed-refs'), 'utf8').split('\n').find((l) => l.endsWith(` ${ref}`));
    return packed ? `${packed.slice(0, 12)} (${ref.replace('refs/heads/', '')})` : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** SQLite as better-sqlite3 (pollgate's driver) bundles it. */
function sqliteVersion(): string {
  try {
    const db = new Database(':memory:');
    const v = db.prepare('SELECT sqlite_version()').pluck().get() as string;
    db.close();
    return v;
  } catch (error) {
    return `unknown (${(error as Error).message})`;
  }
}

/**
 * The setup step: wrk (throughput scenarios) and nginx + libnginx-mod-nchan (the long-poll
 * peer) are installed with apt-get when missing; rows whose tool is missing say so.
 */
function machine(): Record<string, string | number> {
  const lscpu = spawnSync('lscpu', [], { encoding: 'utf8' });
  const model = /^Model name:\s*(.+)$/m.exec(lscpu.stdout ?? '')?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const wrk = ensureWrk();
  const nchan = ensureNchan();
  return {
    date: new Date().toISOString(),
    nproc: os.availableParallelism(),
    cpu: model,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    wrk: wrk.ok ? wrk.version.replace(/ Copyright.*$/, '') : `unavailable: ${wrk.reason}`,
    nginx: nchan.ok ? nchan.nginx : `unavailable: ${nchan.reason}`,
    nchan: nchan.ok ? nchan.nchan : 'unavailable',
    sqlite: sqliteVersion(),
    commit: headCommit(),
    // Others may share the machine: the 1-minute load average when the run started says how much.
    loadavg1m: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}

const info = machine();
log(`machine: ${Object.entries(info).map(([k, v]) => `${k}=${v}`).join(', ')}`);
log(`scenarios: ${selected.map((s) => s.name).join(', ')}; ${runs} runs × ${durationS} s${profileDir ? '; profiling pollgate' : ''}`);

const rows: Row[] = [];
const details: Record<string, unknown> = {};
for (const s of selected) {
  log(`── ${s.name}: ${s.title}`);
  const t0 = Date.now();
  let result: ScenarioResult;
  try {
    result = await s.run({ durationS, runs, profileDir, log });
  } catch (error) {
    log(`${s.name} failed: ${(error as Error).stack ?? String(error)}`);
    result = {
      rows: [{ label: s.name, better: 'higher', pollgate: null, baseline: null, notes: [`error: ${(error as Error).message}`], failed: true }],
    };
  }
  if (isInterrupted()) break;
  rows.push(...result.rows);
  details[s.name] = { seconds: (Date.now() - t0) / 1000, ...result.details };
  log(`${s.name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

if (isInterrupted()) {
  // The signal handler exits shortly; a half-run table is not a result.
  await new Promise(() => {});
}

const table = renderTable(rows);
const notes = rows.filter((r) => r.notes.length > 0).map((r) => `- ${r.label}\n${r.notes.map((n) => `  - ${n}`).join('\n')}`);
process.stdout.write(
  `\npollgate bench, ${info.date}, ${info.cpu}, nproc ${info.nproc}, ${info.memoryGiB} GiB, node ${info.node}, ${info.nginx}, ${info.nchan}, SQLite ${info.sqlite}, ` +
    `commit ${info.commit}, load average ${info.loadavg1m} at start, ${os.loadavg()[0]!.toFixed(2)} at the end\n\n${table}\n\n${notes.join('\n')}\n`,
);

mkdirSync(resultsDir, { recursive: true });
const out = join(resultsDir, 'latest.json');
writeFileSync(out, `${JSON.stringify({ machine: info, runs, durationS, rows, details, table }, null, 2)}\n`);
log(`results written to ${out}; total ${elapsed()}`);
process.exit(rows.some((r) => r.failed) ? 1 : 0);

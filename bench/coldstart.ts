/**
 * coldstart: how long pollgate takes to be ready with 10,000,000 events in its log.
 *
 * The 10M-event database is built once by bench/lib/build-log.ts (through the project's own
 * openDatabase and migrations; see there) and cached in bench/results/cache/log-10m-<key>/,
 * where <key> hashes the files of schema/sqlite/ (and the builder's version): a schema change builds
 * a new one, later runs reuse it. ~2 GiB; building takes a minute or two.
 *
 * Each start: a free loopback port is chosen, then the clock starts and `node --import tsx
 * src/main.ts` is spawned (as npm start runs it) on the cached data dir; the bench polls GET
 * /readyz every 5 ms and the clock stops at the first 200. The count of appended events /metrics then reports must be the
 * 10M. Then SIGTERM (exit 0 expected). POLLGATE_RETENTION is set to 36500d so the 6-day-old
 * events are not trimmed (the cache must not change); nothing else writes.
 * Three kinds of start, interleaved, one warm-up each then ≥3 measured:
 *   - 10M events, database file in the OS page cache (as after a restart of the process);
 *   - 10M events, database file evicted from the page cache first (`dd iflag=nocache
 *     count=0`, i.e. posix_fadvise DONTNEED on that file only; node and its modules stay
 *     cached), as after a reboot;
 *   - an empty log (fresh data dir): the baseline, what starting costs anyway.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './lib/nchan.ts';
import { makeTempDir, removeTempDir, ROOT, spawnNode, type Child } from './lib/proc.ts';
import type { Row, Scenario, ScenarioContext } from './lib/scenario.ts';
import { ADMIN_KEY } from './lib/servers.ts';
import { spread } from './lib/stats.ts';

const EVENTS = 10_000_000;
const TENANTS = 10_000;
const TARGET_MS = 2000;
/** Bump when build-log.ts changes what it writes. */
const BUILDER_VERSION = 1;
const READY_TIMEOUT_MS = 120_000;

interface BigLog {
  dir: string;
  meta: { events: number; head: number; tenants: number; bytes: number; buildSeconds: number; builtAt: string };
  built: boolean;
}

function cacheKey(): string {
  const h = createHash('sha256');
  h.update(`builder ${BUILDER_VERSION} events ${EVENTS} tenants ${TENANTS}\n`);
  const schemaDir = join(ROOT, 'schema', 'sqlite');
  for (const f of readdirSync(schemaDir).sort()) {
    h.update(`${f}\n`);
    h.update(readFileSync(join(schemaDir, f)));
  }
  return h.digest('hex').slice(0, 16);
}

async function ensureBigLog(ctx: ScenarioContext): Promise<BigLog> {
  const cacheDir = join(ROOT, 'bench/results/cache');
  const dir = join(cacheDir, `log-10m-${cacheKey()}`);
  const metaFile = join(dir, 'bench-meta.json');
  if (existsSync(metaFile)) return { dir, meta: JSON.parse(readFileSync(metaFile, 'utf8')) as BigLog['meta'], built: false };
  mkdirSync(cacheDir, { recursive: true });
  // Older caches (other schema versions) are 2 GiB each: remove them, and unfinished builds
  // whose builder is gone (another bench run may be building right now: leave that one be).
  for (const old of readdirSync(cacheDir)) {
    const building = /^\.building-(\d+)$/.exec(old);
    if (old.startsWith('log-10m-') || (building && !alive(Number(building[1])))) {
      ctx.log(`coldstart: removing the stale cache ${old}`);
      rmSync(join(cacheDir, old), { recursive: true, force: true });
    }
  }
  const building = join(cacheDir, `.building-${process.pid}`);
  ctx.log(`coldstart: building the ${EVENTS.toLocaleString('en-US')}-event database once (cached in ${dir}) …`);
  const child = spawnNode('bench/lib/build-log.ts', { args: [building, String(EVENTS), String(TENANTS)] });
  child.proc.stderr?.on('data', (b: Buffer) => {
    const line = b.toString('utf8').trim().split('\n').pop();
    if (line && /rows|indexes/.test(line)) ctx.log(`coldstart: ${line}`);
  });
  const { code } = await child.exited;
  if (code !== 0) {
    rmSync(building, { recursive: true, force: true });
    throw new Error(`building the 10M-event database failed (exit ${code}):\n${child.tail()}`);
  }
  try {
    renameSync(building, dir);
  } catch (error) {
    // Another run finished the same build first: use its copy.
    rmSync(building, { recursive: true, force: true });
    if (!existsSync(metaFile)) throw error;
  }
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as BigLog['meta'];
  ctx.log(`coldstart: built in ${meta.buildSeconds} s, ${(meta.bytes / 2 ** 30).toFixed(2)} GiB`);
  return { dir, meta, built: true };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Drops the file's pages from the OS page cache (POSIX_FADV_DONTNEED via GNU dd). */
function evict(file: string): boolean {
  const r = spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'], { timeout: 60_000 });
  return r.status === 0;
}

/** Pages of the file in the page cache, if fincore (util-linux) is there: "12.3M" etc. */
function cached(file: string): string | null {
  const r = spawnSync('fincore', ['--noheadings', '--output', 'RES', file], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

interface Start {
  readyMs: number;
  head: number;
  exitCode: number | null;
}

async function timeStart(dataDir: string): Promise<Start> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/readyz`;
  const t0 = performance.now();
  const child: Child = spawnNode('src/main.ts', {
    env: {
      ...process.env,
      POLLGATE_DATA_DIR: dataDir,
      POLLGATE_HOST: '127.0.0.1',
      POLLGATE_PORT: String(port),
      POLLGATE_ADMIN_KEY: ADMIN_KEY,
      POLLGATE_LOG_LEVEL: 'warn',
      POLLGATE_RETENTION: '36500d',
    },
  });
  let head = -1;
  let readyMs = Number.NaN;
  let exitCode: number | null = null;
  try {
    for (;;) {
      try {
        const res = await fetch(url);
        await res.body?.cancel();
        if (res.status === 200) {
          readyMs = performance.now() - t0;
          // The count comes from /metrics (admin key): /readyz does not tell the volume.
          const metrics = await (await fetch(url.replace('/readyz', '/metrics'), { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).text();
          head = Number(/^pollgate_events_appended (\d+)$/m.exec(metrics)?.[1] ?? -1);
          break;
        }
      } catch {
        // not listening yet
      }
      if (child.proc.exitCode !== null) throw new Error(`pollgate exited before it was ready:\n${child.tail()}`);
      if (performance.now() - t0 > READY_TIMEOUT_MS) throw new Error(`pollgate not ready after ${READY_TIMEOUT_MS} ms:\n${child.tail()}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    exitCode = await child.stop();
  }
  return { readyMs, head, exitCode };
}

export const scenario: Scenario = {
  name: 'coldstart',
  title: 'time from spawn to /readyz 200 with 10,000,000 events in the log (vs an empty log)',
  async run(ctx) {
    const big = await ensureBigLog(ctx);
    const dbFile = join(big.dir, 'pollgate.db');
    const problems: string[] = [];
    const warm: Start[] = [];
    const evicted: Start[] = [];
    const empty: Start[] = [];
    let evictOk = true;
    const residency: string[] = [];
    for (let run = 0; run <= ctx.runs; run++) {
      const label = run === 0 ? 'warm-up' : `run ${run}/${ctx.runs}`;
      const w = await timeStart(big.dir);
      evictOk = evict(dbFile) && evictOk;
      const res = cached(dbFile);
      if (res !== null && run > 0) residency.push(res);
      const e = await timeStart(big.dir);
      const dir = makeTempDir('pollgate-empty');
      const z = await timeStart(dir);
      removeTempDir(dir);
      for (const [name, s, want] of [['10M warm', w, big.meta.head], ['10M evicted', e, big.meta.head], ['empty', z, 0]] as const) {
        if (s.head !== want) problems.push(`${label} ${name}: appended ${s.head}, want ${want}`);
        if (s.exitCode !== 0) problems.push(`${label} ${name}: exit ${s.exitCode} on SIGTERM`);
      }
      ctx.log(`coldstart ${label}: 10M events ${w.readyMs.toFixed(0)} ms (page cache warm), ${e.readyMs.toFixed(0)} ms (file evicted${res ? `, ${res} cached before start` : ''}); empty log ${z.readyMs.toFixed(0)} ms`);
      if (run === 0) continue;
      warm.push(w);
      evicted.push(e);
      empty.push(z);
    }
    const baseline = spread(empty.map((s) => s.readyMs));
    const notes = [
      `${warm.length} interleaved runs (+1 warm-up): spawn of \`node --import tsx src/main.ts\` → first /readyz 200, polled every 5 ms; the appended count (/metrics) was checked`,
      `database: ${big.meta.events.toLocaleString('en-US')} events over ${big.meta.tenants.toLocaleString('en-US')} tenants, ${(big.meta.bytes / 2 ** 30).toFixed(2)} GiB, ` +
        `${big.built ? `built in this run in ${big.meta.buildSeconds} s` : `cached (built ${big.meta.builtAt} in ${big.meta.buildSeconds} s)`}; ${big.dir.replace(ROOT, '')}`,
      problems.length === 0 ? 'every start reported the right head and exited 0 on SIGTERM' : `PROBLEMS: ${problems.join(' | ')}`,
    ];
    const row = (label: string, runs: Start[], extra: string[]): Row => {
      const p = spread(runs.map((s) => s.readyMs));
      return {
        label,
        better: 'lower',
        pollgate: p,
        baseline,
        peer: 'empty log',
        pairRatios: runs.map((s, i) => s.readyMs / empty[i]!.readyMs),
        target: `< ${TARGET_MS / 1000} s`,
        met: p.median < TARGET_MS,
        failed: problems.length > 0,
        notes: extra,
      };
    };
    return {
      rows: [
        row('cold start, 10M events in the log: spawn → /readyz 200 (ms)', warm, notes),
        row('cold start, 10M events, DB file evicted from the page cache (ms)', evicted, [
          evictOk ? `evicted with dd iflag=nocache count=0 before each start${residency.length ? `; fincore said ${residency.join(', ')} resident right after` : ''}` : 'eviction (dd iflag=nocache) failed: these are warm starts',
        ]),
      ],
      details: { warm, evicted, empty, meta: big.meta },
    };
  },
};

/**
 * An A/B of two pollgate servers under the publish loads: 1 event/request over 64
 * connections and 1000 events/request over 8, in alternating wrk runs (the order swapped
 * every round) after a 2 s warm-up each. Every run's answers are checked against the log
 * (lib/duel.ts checkLog). Rows: events/s, server CPU per event (all threads) and p99, B ÷ A.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BATCH } from '../batch-publish.ts';
import { eventBody, TENANTS } from '../publish.ts';
import { checkLog } from './duel.ts';
import { mainThreadProfile } from './profile.ts';
import { publishBudget, renderBudget, type Budget } from './publish-budget.ts';
import { cpuSeconds, makeTempDir, removeTempDir } from './proc.ts';
import type { Row, ScenarioContext } from './scenario.ts';
import { ADMIN_KEY, readHead, type PollgateServer } from './servers.ts';
import { spread } from './stats.ts';
import { ensureWrk, runWrk } from './wrk.ts';

export interface AbSide {
  name: string;
  /** profileDir: run under --cpu-prof into it (ctx.profileDir given). */
  start(profile?: { profileDir: string; profileName: string }): Promise<PollgateServer>;
}

/**
 * BENCH_AB_LOADS=publish or batch runs one of the two loads only (with --profile, so each
 * side's CPU budget is that load's).
 */
export async function abPublish(ctx: ScenarioContext, label: string, a: AbSide, b: AbSide): Promise<{ rows: Row[]; budgets: Record<string, Budget> }> {
  const only = process.env.BENCH_AB_LOADS;
  const wrk = ensureWrk();
  if (!wrk.ok) return { rows: [{ label, better: 'higher', pollgate: null, baseline: null, skipped: 'wrk not available', notes: [] }], budgets: {} };
  const tmp = makeTempDir('bench-ab');
  const single = join(tmp, 'single.txt');
  const batch = join(tmp, 'batch.txt');
  writeFileSync(single, `${Array.from({ length: TENANTS }, (_, i) => JSON.stringify(eventBody(i))).join('\n')}\n`);
  writeFileSync(batch, `${Array.from({ length: 4 }, (_, v) => JSON.stringify(Array.from({ length: BATCH }, (_, i) => eventBody(v * BATCH + i)))).join('\n')}\n`);
  const servers: PollgateServer[] = [];
  const rows: Row[] = [];
  const budgets: Record<string, Budget> = {};
  const profile = (side: string) => (ctx.profileDir ? { profileDir: ctx.profileDir, profileName: `ab-${side}-${Date.now()}` } : undefined);
  const appended = { a: 0, b: 0 };
  const failures: string[] = [];
  let sa: PollgateServer | null = null;
  let sb: PollgateServer | null = null;
  try {
    sa = await a.start(profile('a'));
    servers.push(sa);
    sb = await b.start(profile('b'));
    servers.push(sb);
    const loads = [
      { key: 'publish', name: 'publish 1 event/req, 64 conns', file: single, perReq: 1, connections: 64 },
      { key: 'batch', name: `batch publish ${BATCH} events/req, 8 conns`, file: batch, perReq: BATCH, connections: 8 },
    ].filter((l) => !only || l.key === only);
    for (const load of loads) {
      const res = { a: { rate: [] as number[], cpu: [] as number[], p99: [] as number[] }, b: { rate: [] as number[], cpu: [] as number[], p99: [] as number[] } };
      const one = async (side: 'a' | 'b', durationS: number) => {
        const server = (side === 'a' ? sa : sb)!;
        const before = await settledHead(server);
        const cpu0 = cpuSeconds(server.child.proc.pid);
        const r = await runWrk({ url: server.url, path: '/v1/events', bodiesFile: load.file, auth: ADMIN_KEY, connections: load.connections, threads: 2, durationS });
        const cpu1 = cpuSeconds(server.child.proc.pid);
        const added = (await settledHead(server)) - before;
        appended[side] += added;
        // A request wrk gave up on (its 10-s timeout) may still commit: it counts as in flight.
        const check = checkLog(load.name, r, added, { eventsPerRequest: load.perReq, connections: load.connections + r.socketErrors.timeout });
        // Recorded, not thrown: a failed check marks the rows FAILED and the other runs go on.
        if (!check.passed) failures.push(`${load.name}, ${side === 'a' ? a.name : b.name}: ${check.problem} (${r.requests} answers, ${r.statusErrors} non-2xx, socket errors ${JSON.stringify(r.socketErrors)})`);
        return { rate: r.requestsPerS * load.perReq, cpu: cpu0 === null || cpu1 === null ? Number.NaN : ((cpu1 - cpu0) * 1e6) / (r.requests * load.perReq), p99: r.latencyMs.p99 };
      };
      await one('a', 2);
      await one('b', 2);
      for (let i = 0; i < ctx.runs; i++) {
        for (const side of i % 2 === 0 ? (['a', 'b'] as const) : (['b', 'a'] as const)) {
          const m = await one(side, ctx.durationS);
          res[side].rate.push(m.rate);
          res[side].cpu.push(m.cpu);
          res[side].p99.push(m.p99);
          ctx.log(`${label}: ${load.name}: ${side === 'a' ? a.name : b.name} run ${i + 1}: ${Math.round(m.rate)} events/s, ${m.cpu.toFixed(1)} µs CPU/event (all threads), p99 ${m.p99.toFixed(1)} ms`);
        }
      }
      const pairs = (k: 'rate' | 'cpu' | 'p99') => res.b[k].map((x, i) => x / res.a[k][i]!);
      const row = (what: string, k: 'rate' | 'cpu' | 'p99', better: 'higher' | 'lower'): Row => ({
        label: `${label}, ${load.name}: ${what}`,
        better,
        pollgate: spread(res.b[k]),
        baseline: spread(res.a[k]),
        peer: a.name,
        pairRatios: pairs(k),
        notes: [],
      });
      rows.push(row('events/s', 'rate', 'higher'), row('server CPU per event, all threads (µs)', 'cpu', 'lower'), row('request p99 (ms)', 'p99', 'lower'));
    }
    rows[0]!.notes.push(`${b.name} (pollgate column) ÷ ${a.name}; ${ctx.runs} alternating runs of ${ctx.durationS} s per side (order swapped every round) after a 2 s warm-up each; every run's log checked`);
    if (failures.length > 0) {
      rows[0]!.notes.push(`LOG CHECK FAILED: ${failures.join('; ')}`);
      for (const r of rows) r.failed = true;
    }
  } finally {
    for (const s of servers) await s.stop();
    removeTempDir(tmp);
  }
  for (const [side, server, name] of [['a', sa, a.name], ['b', sb, b.name]] as const) {
    if (!server?.profileDir) continue;
    try {
      const budget = publishBudget(mainThreadProfile(server.profileDir), appended[side], { skipFirstMs: server.startupMs });
      budgets[name] = budget;
      ctx.log(`${label}: ${name}: ${renderBudget(budget)}`);
      rows[0]?.notes.push(`${name}: CPU budget (main thread, µs per event): ${budget.perEventUs.filter((s) => s.us >= 0.05).map((s) => `${s.step} ${s.us.toFixed(2)}`).join('; ')}; total ${budget.totalUs.toFixed(1)}`);
    } catch (error) {
      ctx.log(`${label}: no budget for ${name}: ${(error as Error).message}`);
    }
  }
  return { rows, budgets };
}

/**
 * The log's head once it has stopped moving: requests wrk left in flight commit after it
 * stops, and on a loaded machine a batch commit takes seconds, so a fixed pause would count
 * one run's stragglers in the next run's check.
 */
async function settledHead(server: PollgateServer): Promise<number> {
  let head = await readHead(server);
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = await readHead(server);
    if (now === head) return now;
    head = now;
  }
  return head;
}

/**
 * engines: pollgate on PostgreSQL next to pollgate on SQLite, in the same run (issue rows for
 * "More than one node"). The baseline of every row is the embedded engine, so the ratio reads
 * "PostgreSQL ÷ SQLite"; runs are interleaved (PostgreSQL, SQLite, PostgreSQL, …) and
 * PostgreSQL shares the machine's two cores with the nodes, as it would on a small box.
 *
 * - publish, 1 event/request, 64 connections, and batch publish, 1000 events/request, 8
 *   connections (the publish scenarios' bodies), on one node and on two nodes (two wrk runs at
 *   once, half the connections each, events/s added up). Every run's answers are checked
 *   against the log (events appended = 2xx × events per request, plus requests in flight).
 * - wake across nodes: 1,000 consumers on 1,000 tenants polling node B, one event per tenant
 *   published (one 1,000-event request) on node A, next to the same published on node B.
 *   Latency = the publish request written → each answer received (as in the wake scenario).
 * - drain: one consumer catching up on 100,000 events with limit=1000 and ack= in the poll,
 *   on PostgreSQL and on SQLite.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConsumers } from './lib/consumers.ts';
import { checkLog } from './lib/duel.ts';
import { drainLoop } from './drain.ts';
import { PollFleet } from './lib/poll-fleet.ts';
import { createDatabase, postgresUnavailable, type BenchDatabase } from './lib/postgres.ts';
import { prefill } from './lib/prefill.ts';
import { makeTempDir, removeTempDir } from './lib/proc.ts';
import type { Row, Scenario, ScenarioContext } from './lib/scenario.ts';
import { ADMIN_KEY, readHead, startPollgate, type PollgateServer } from './lib/servers.ts';
import { percentile, spread } from './lib/stats.ts';
import { ensureWrk, runWrk, type WrkResult } from './lib/wrk.ts';
import { eventBody, TENANTS } from './publish.ts';
import { pollgateSide, pollgateSpecs, runRound } from './wake.ts';

const WAKE_POLLS = 1000;
const DRAIN_BACKLOG = 100_000;

interface Deployment {
  name: string;
  nodes: PollgateServer[];
  database: BenchDatabase | null;
  stop(): Promise<void>;
}

async function sqliteDeployment(): Promise<Deployment> {
  const node = await startPollgate();
  return { name: 'SQLite', nodes: [node], database: null, stop: async () => void (await node.stop()) };
}

async function postgresDeployment(nodes: number, prefix: string): Promise<Deployment> {
  const database = createDatabase(prefix);
  const started: PollgateServer[] = [];
  try {
    // One after another: the first applies the schema.
    for (let i = 0; i < nodes; i++) started.push(await startPollgate({ env: { POLLGATE_DATABASE_URL: database.url } }));
  } catch (error) {
    for (const n of started) await n.stop();
    database.drop();
    throw error;
  }
  return {
    name: `PostgreSQL, ${nodes} node${nodes > 1 ? 's' : ''}`,
    nodes: started,
    database,
    async stop() {
      for (const n of started) await n.stop();
      database.drop();
    },
  };
}

interface LoadSpec {
  label: string;
  bodiesFile: string;
  eventsPerRequest: number;
  connections: number;
}

/** wrk against every node at once (connections split), events/s added up; checked against the log. */
async function loadAll(d: Deployment, l: LoadSpec, durationS: number): Promise<{ eventsPerS: number; problem: string | null; p99: number }> {
  const before = await readHead(d.nodes[0]!);
  const per = Math.max(1, Math.floor(l.connections / d.nodes.length));
  const runs: WrkResult[] = await Promise.all(
    d.nodes.map((n) => runWrk({ url: n.url, path: '/v1/events', bodiesFile: l.bodiesFile, auth: ADMIN_KEY, connections: per, threads: 1, durationS })),
  );
  await new Promise((r) => setTimeout(r, 300));
  const appended = (await readHead(d.nodes[0]!)) - before;
  const merged: WrkResult = {
    ...runs[0]!,
    requests: runs.reduce((s, r) => s + r.requests, 0),
    statusErrors: runs.reduce((s, r) => s + r.statusErrors, 0),
  };
  const check = checkLog(d.name, merged, appended, { eventsPerRequest: l.eventsPerRequest, connections: per * d.nodes.length });
  const eventsPerS = runs.reduce((s, r) => s + r.requestsPerS, 0) * l.eventsPerRequest;
  return { eventsPerS, problem: check.problem, p99: Math.max(...runs.map((r) => r.latencyMs.p99)) };
}

/** PostgreSQL (1 and 2 nodes) against SQLite for one load, interleaved; one row per PostgreSQL variant. */
async function publishRows(ctx: ScenarioContext, l: LoadSpec, target: { text: string; ratio: number } | null): Promise<Row[]> {
  const sqlite = await sqliteDeployment();
  const pg1 = await postgresDeployment(1, 'bench_pg1');
  const pg2 = await postgresDeployment(2, 'bench_pg2');
  const runs: Record<string, number[]> = { sqlite: [], pg1: [], pg2: [] };
  const p99s: Record<string, number[]> = { sqlite: [], pg1: [], pg2: [] };
  const problems: string[] = [];
  try {
    for (const d of [sqlite, pg1, pg2]) await loadAll(d, l, 2); // warm-up
    for (let i = 1; i <= ctx.runs; i++) {
      for (const [key, d] of [['pg1', pg1], ['sqlite', sqlite], ['pg2', pg2]] as const) {
        const r = await loadAll(d, l, ctx.durationS);
        runs[key]!.push(r.eventsPerS);
        p99s[key]!.push(r.p99);
        if (r.problem) problems.push(`${d.name} run ${i}: ${r.problem}`);
        ctx.log(`engines ${l.label}: ${d.name} run ${i}/${ctx.runs}: ${Math.round(r.eventsPerS)} events/s, p99 ${r.p99.toFixed(1)} ms${r.problem ? `; PROBLEM ${r.problem}` : ''}`);
      }
    }
  } finally {
    await pg2.stop();
    await pg1.stop();
    await sqlite.stop();
  }
  const row = (key: 'pg1' | 'pg2', name: string, withTarget: boolean): Row => {
    const p = spread(runs[key]!);
    const b = spread(runs.sqlite!);
    const ratio = p.median / b.median;
    return {
      label: `${l.label} on ${name} (events/s)`,
      better: 'higher',
      pollgate: p,
      baseline: b,
      peer: 'SQLite',
      pairRatios: runs[key]!.map((v, i) => v / runs.sqlite![i]!),
      ...(withTarget && target ? { target: target.text, met: ratio >= target.ratio } : {}),
      failed: problems.length > 0,
      notes: [
        `${ctx.runs} interleaved runs per engine; p99 latency (ms): ${name} ${p99s[key]!.map((v) => v.toFixed(1)).join(', ')}; SQLite ${p99s.sqlite!.map((v) => v.toFixed(1)).join(', ')}`,
        problems.length === 0 ? 'every run: events appended = 2xx answers × events per request (+ requests in flight when wrk stopped)' : `PROBLEMS: ${problems.join(' | ')}`,
      ],
    };
  };
  return [row('pg1', 'PostgreSQL, 1 node', true), row('pg2', 'PostgreSQL, 2 nodes', false)];
}

/** Cross-node wake next to same-node wake, on one PostgreSQL deployment of two nodes. */
async function wakeRows(ctx: ScenarioContext): Promise<Row[]> {
  const d = await postgresDeployment(2, 'bench_wake');
  const [a, b] = d.nodes as [PollgateServer, PollgateServer];
  const fleets: PollFleet[] = [];
  const stats: Record<'cross' | 'same', Array<{ p50: number; p99: number }>> = { cross: [], same: [] };
  const pooled: Record<'cross' | 'same', number[]> = { cross: [], same: [] };
  const problems: string[] = [];
  try {
    const crossTenant = (i: number) => `x${String(i).padStart(5, '0')}`;
    const sameTenant = (i: number) => `y${String(i).padStart(5, '0')}`;
    const cross = await createConsumers(b, Array.from({ length: WAKE_POLLS }, (_, i) => crossTenant(i)));
    const same = await createConsumers(b, Array.from({ length: WAKE_POLLS }, (_, i) => sameTenant(i)));
    const crossFleet = new PollFleet();
    const sameFleet = new PollFleet();
    fleets.push(crossFleet, sameFleet);
    await crossFleet.init(b.port, 'pollgate', pollgateSpecs(cross), a.port); // polls on B, publishes on A
    await sameFleet.init(b.port, 'pollgate', pollgateSpecs(same));
    const sides = {
      cross: pollgateSide(b, crossFleet, false, crossTenant),
      same: pollgateSide(b, sameFleet, false, sameTenant),
    };
    const rounds = Math.max(3, ctx.runs + 2);
    for (let round = 0; round <= rounds; round++) {
      for (const kind of ['cross', 'same'] as const) {
        const r = await runRound(sides[kind], WAKE_POLLS, round);
        ctx.log(`engines wake ${kind}-node round ${round}: p50 ${r.stats.p50.toFixed(1)} ms, p99 ${r.stats.p99.toFixed(1)} ms${r.problems.length ? `; PROBLEM ${r.problems.join('; ')}` : ''}`);
        problems.push(...r.problems.map((p) => `${kind} round ${round}: ${p}`));
        if (round === 0) continue;
        stats[kind].push(r.stats);
        pooled[kind].push(...r.latencies);
      }
    }
  } finally {
    for (const f of fleets) await f.close();
    await d.stop();
  }
  const row = (stat: 'p50' | 'p99', target: boolean): Row => {
    const p = spread(stats.cross.map((s) => s[stat]));
    const base = spread(stats.same.map((s) => s[stat]));
    return {
      label: `wake 1,000 polls held on node B, 1 event per tenant published on node A: ${stat} (ms)`,
      better: 'lower',
      pollgate: p,
      baseline: base,
      peer: 'published on B',
      pairRatios: stats.cross.map((s, i) => s[stat] / stats.same[i]![stat]),
      ...(target ? { target: '≤ 2× same node', met: p.median <= 2 * base.median } : {}),
      failed: problems.length > 0,
      notes: target
        ? [
            `PostgreSQL, 2 nodes; ${stats.cross.length} measured rounds each (+1 warm-up), interleaved; the polls on B are woken by A's NOTIFY (cross) or by B's own commit (same)`,
            `pooled: cross p50 ${percentile(pooled.cross, 50).toFixed(1)} ms, p99 ${percentile(pooled.cross, 99).toFixed(1)} ms; same p50 ${percentile(pooled.same, 50).toFixed(1)} ms, p99 ${percentile(pooled.same, 99).toFixed(1)} ms`,
            problems.length === 0 ? 'every poll answered 200 with exactly its one new event' : `PROBLEMS: ${problems.join(' | ')}`,
          ]
        : [],
    };
  };
  return [row('p99', true), row('p50', false)];
}

/** Drain on PostgreSQL next to drain on SQLite. */
async function drainRow(ctx: ScenarioContext): Promise<Row> {
  const sqlite = await sqliteDeployment();
  const pg = await postgresDeployment(1, 'bench_drain');
  const runs: Record<'pg' | 'sqlite', number[]> = { pg: [], sqlite: [] };
  const problems: string[] = [];
  try {
    const consumersOf: Record<'pg' | 'sqlite', Array<{ key: string }>> = { pg: [], sqlite: [] };
    for (const [key, d] of [['pg', pg], ['sqlite', sqlite]] as const) {
      const node = d.nodes[0]!;
      await prefill(node, DRAIN_BACKLOG, (i) => ({ ...eventBody(i), tenant: 'drain' }));
      consumersOf[key] = await createConsumers(node, Array.from({ length: ctx.runs + 1 }, () => 'drain'), { start: 'earliest' });
    }
    for (let run = 0; run <= ctx.runs; run++) {
      for (const [key, d] of [['pg', pg], ['sqlite', sqlite]] as const) {
        const r = await drainLoop(d.nodes[0]!.port, consumersOf[key][run]!.key, {});
        if (r.events !== DRAIN_BACKLOG) r.problems.push(`${r.events} events received of ${DRAIN_BACKLOG}`);
        problems.push(...r.problems.map((p) => `${d.name} run ${run}: ${p}`));
        ctx.log(`engines drain ${d.name} run ${run}: ${Math.round(r.eventsPerS)} events/s`);
        if (run > 0) runs[key].push(r.eventsPerS);
      }
    }
  } finally {
    await pg.stop();
    await sqlite.stop();
  }
  return {
    label: `backlog drain on PostgreSQL, 1 consumer, limit=1000 + ack=, ${DRAIN_BACKLOG / 1000}k events (events/s)`,
    better: 'higher',
    pollgate: spread(runs.pg),
    baseline: spread(runs.sqlite),
    peer: 'SQLite',
    pairRatios: runs.pg.map((v, i) => v / runs.sqlite[i]!),
    failed: problems.length > 0,
    notes: [problems.length === 0 ? 'every event received once, in order, on both engines' : `PROBLEMS: ${problems.join(' | ')}`],
  };
}

export const scenario: Scenario = {
  name: 'engines',
  title: 'PostgreSQL (1 and 2 nodes) next to SQLite: publish, batch publish, cross-node wake, drain',
  async run(ctx) {
    const unavailable = postgresUnavailable() ?? (ensureWrk().ok ? null : 'wrk not available');
    if (unavailable) {
      return { rows: [{ label: 'engines: PostgreSQL rows', better: 'higher', pollgate: null, baseline: null, skipped: unavailable, notes: [`skipped: ${unavailable}`] }] };
    }
    const tmp = makeTempDir('bench-engines');
    try {
      const single = join(tmp, 'single.txt');
      writeFileSync(single, `${Array.from({ length: TENANTS }, (_, i) => JSON.stringify(eventBody(i))).join('\n')}\n`);
      const batch = join(tmp, 'batch.txt');
      writeFileSync(batch, `${Array.from({ length: 4 }, (_, v) => JSON.stringify(Array.from({ length: 1000 }, (_, i) => eventBody(v * 1000 + i)))).join('\n')}\n`);
      const rows: Row[] = [];
      rows.push(...(await publishRows(ctx, { label: 'publish 1 event/req, 64 conns', bodiesFile: single, eventsPerRequest: 1, connections: 64 }, null)));
      rows.push(...(await publishRows(ctx, { label: 'batch publish 1000 events/req, 8 conns', bodiesFile: batch, eventsPerRequest: 1000, connections: 8 }, { text: '≥ 0.5× SQLite', ratio: 0.5 })));
      rows.push(...(await wakeRows(ctx)));
      rows.push(await drainRow(ctx));
      return { rows };
    } finally {
      removeTempDir(tmp);
    }
  },
};


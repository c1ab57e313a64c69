/**
 * push: the push bridge's delivery rate to local receivers: 1 endpoint (1 consumer), 1 receiver
 * port shared by 100 consumers (a path each), and 100 endpoints (100 ports).
 *
 * pollgate runs with POLLGATE_ALLOW_PRIVATE_TARGETS=1 (the receivers are on 127.0.0.1) and
 * the default POLLGATE_PUSH_CONCURRENCY. The receiver is a SEPARATE process
 * (bench/lib/receiver.ts): plain node:http servers answering 204, recording each request's
 * webhook-id. 100 endpoints = 100 distinct ports (one server per port, in that one process),
 * each consumer its own port and path /hook/<n>.
 *
 * The log is prefilled once through batch publish (one request at a time, so log order is id
 * order), with producer ids so the expected order is known: 5,000 events of tenant
 * "push-one" (1 endpoint) and 300 events each of tenants push-000…push-099 (100 endpoints,
 * 30,000 in all), ~110-byte events like the publish bench's.
 * Each run creates fresh consumers at "earliest" (so every run delivers the whole backlog),
 * then starts the clock and PUTs the webhooks (the 100 concurrently); the clock stops when the
 * receiver has seen every event id (its own monotonic time of the last one). deliveries/s =
 * events ÷ that time. Checks per consumer: every event id arrived at least once, and the first
 * arrivals are in log order (duplicates, i.e. redeliveries, are counted and reported). The
 * webhooks are deleted after each run. Runs: ≥3, the variants alternately.
 * No peer: the ratio is against the 10,000 deliveries/s target.
 */
import { createConsumers } from './lib/consumers.ts';
import { IpcChild } from './lib/ipc.ts';
import { prefill } from './lib/prefill.ts';
import { monoMs } from './lib/raw-http.ts';
import type { Row, Scenario, ScenarioContext } from './lib/scenario.ts';
import { adminJson, readMetrics, startPollgate, type PollgateServer } from './lib/servers.ts';
import { spread } from './lib/stats.ts';
import { eventBody } from './publish.ts';

const TARGET = 10_000;
const ONE_EVENTS = 5_000;
const MANY = 100;
const MANY_EVENTS_EACH = 300;
const DONE_TIMEOUT_MS = 120_000;

const idOf = (tenant: string, n: number) => `${tenant}-${String(n).padStart(6, '0')}`;
const manyTenant = (i: number) => `push-${String(i).padStart(3, '0')}`;

interface Variant {
  name: string;
  /** The table row's label. */
  label: string;
  endpoints: number;
  tenants: string[];
  eventsEach: number;
}

interface PushRun {
  events: number;
  ms: number;
  perS: number;
  requests: number;
  duplicates: number;
  /** From /metrics over the run: commits, their mean time and the share of the run inside them. */
  commits: { count: number; meanMs: number; loopShare: number } | null;
  problems: string[];
}

async function runOnce(ctx: ScenarioContext, server: PollgateServer, receiver: IpcChild, ports: number[], v: Variant): Promise<PushRun> {
  const consumers = await createConsumers(server, v.tenants, { start: 'earliest' });
  const total = v.tenants.length * v.eventsEach;
  await receiver.request({ op: 'expect', count: total });
  const done = new Promise<{ at: number; requests: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`push ${v.name}: the receiver did not get all ${total} events within ${DONE_TIMEOUT_MS} ms`)), DONE_TIMEOUT_MS);
    receiver.onEvent = (m) => {
      if (m.op !== 'done') return;
      clearTimeout(timer);
      resolve({ at: m.at as number, requests: m.requests as number });
    };
  });
  const m0 = await readMetrics(server);
  const t0 = monoMs();
  await Promise.all(
    consumers.map((c, i) =>
      adminJson(server, 'PUT', `/v1/consumers/${c.id}/webhook`, { url: `http://127.0.0.1:${ports[i % ports.length]}/hook/${i}` }, 201),
    ),
  );
  const d = await done;
  const ms = d.at - t0;
  const m1 = await readMetrics(server);
  const diff = (k: string) => (m1?.get(k) ?? Number.NaN) - (m0?.get(k) ?? Number.NaN);
  const commitCount = diff('pollgate_commit_group_size_count');
  const commits = commitCount > 0 ? { count: commitCount, meanMs: (1000 * diff('pollgate_commit_duration_seconds_sum')) / commitCount, loopShare: diff('pollgate_commit_duration_seconds_sum') / (ms / 1000) } : null;
  // Let in-flight redeliveries (if any) land before the report.
  await new Promise((r) => setTimeout(r, 200));
  const report = await receiver.request<{ endpoints: Record<string, string[]>; requests: number }>({ op: 'report' });
  const problems: string[] = [];
  let duplicates = 0;
  consumers.forEach((c, i) => {
    const got = report.endpoints[`${ports[i % ports.length]}/hook/${i}`] ?? [];
    const seen = new Set<string>();
    const firsts: string[] = [];
    for (const id of got) {
      if (seen.has(id)) duplicates += 1;
      else {
        seen.add(id);
        firsts.push(id);
      }
    }
    const want = Array.from({ length: v.eventsEach }, (_, n) => idOf(c.tenant, n + 1));
    if (firsts.length !== want.length) problems.push(`${c.tenant}: ${firsts.length} distinct ids, want ${want.length}`);
    else {
      const at = firsts.findIndex((id, n) => id !== want[n]);
      if (at >= 0) problems.push(`${c.tenant}: out of order at #${at + 1}: got ${firsts[at]}, want ${want[at]}`);
    }
  });
  await Promise.all(consumers.map((c) => adminJson(server, 'DELETE', `/v1/consumers/${c.id}/webhook`, undefined, 200)));
  const perS = (total / ms) * 1000;
  ctx.log(`push ${v.name}: ${total} events delivered in ${ms.toFixed(0)} ms → ${Math.round(perS)} deliveries/s; ${report.requests} requests, ${duplicates} duplicates${problems.length ? `; PROBLEM ${problems.slice(0, 3).join('; ')}` : ''}`);
  return { events: total, ms, perS, requests: report.requests, duplicates, commits, problems };
}

export const scenario: Scenario = {
  name: 'push',
  title: 'push bridge deliveries/s to a local receiver process: 1 endpoint, 1 receiver port for 100 consumers, and 100 endpoints (100 ports)',
  async run(ctx) {
    const server = await startPollgate({ env: { POLLGATE_ALLOW_PRIVATE_TARGETS: '1' } });
    const receiver = new IpcChild('bench/lib/receiver.ts', 'webhook receiver');
    const variants: Variant[] = [
      { name: '1 endpoint', label: '1 local endpoint (1 consumer)', endpoints: 1, tenants: ['push-one'], eventsEach: ONE_EVENTS },
      {
        name: `1 receiver, ${MANY} consumers`,
        label: `1 local receiver (1 port, ${MANY} consumers, a path each)`,
        endpoints: 1,
        tenants: Array.from({ length: MANY }, (_, i) => manyTenant(i)),
        eventsEach: MANY_EVENTS_EACH,
      },
      {
        name: `${MANY} endpoints`,
        label: `${MANY} local endpoints (${MANY} consumers, ${MANY} ports)`,
        endpoints: MANY,
        tenants: Array.from({ length: MANY }, (_, i) => manyTenant(i)),
        eventsEach: MANY_EVENTS_EACH,
      },
    ];
    const results = new Map<string, PushRun[]>(variants.map((v) => [v.name, []]));
    let prefillNote = '';
    try {
      const { ports } = await receiver.request<{ ports: number[] }>({ op: 'listen', ports: MANY });
      // One request at a time, so the log order is the id order the checks expect.
      const one = await prefill(server, ONE_EVENTS, (i) => ({ ...eventBody(i), tenant: 'push-one', id: idOf('push-one', i + 1) }), { concurrency: 1 });
      // 1000-event batches over the 100 tenants: event i is tenant i % 100's (i / 100 + 1)-th.
      const many = await prefill(server, MANY * MANY_EVENTS_EACH, (i) => {
        const tenant = manyTenant(i % MANY);
        return { ...eventBody(i), tenant, id: idOf(tenant, Math.floor(i / MANY) + 1) };
      }, { concurrency: 1 });
      prefillNote = `prefill through batch publish: ${ONE_EVENTS} events in ${(one.ms / 1000).toFixed(1)} s, ${MANY * MANY_EVENTS_EACH} in ${(many.ms / 1000).toFixed(1)} s`;
      ctx.log(`push: ${prefillNote}`);
      for (let run = 0; run <= ctx.runs; run++) {
        for (const v of variants) {
          const r = await runOnce(ctx, server, receiver, v.endpoints === 1 ? [ports[0]!] : ports, v);
          if (run > 0) results.get(v.name)!.push(r); // run 0 is the warm-up
        }
      }
    } finally {
      await receiver.close();
      await server.stop();
    }
    const rows: Row[] = variants.map((v) => {
      const rs = results.get(v.name)!;
      const p = spread(rs.map((r) => r.perS));
      const problems = rs.flatMap((r, i) => r.problems.map((x) => `run ${i + 1}: ${x}`));
      return {
        label: `push bridge to ${v.label} (deliveries/s)`,
        better: 'higher',
        pollgate: p,
        baseline: null,
        targetValue: TARGET,
        target: `≥ ${TARGET / 1000}k deliveries/s`,
        met: p.median >= TARGET,
        failed: problems.length > 0,
        notes: [
          `${rs.length} runs (+1 warm-up) of ${v.tenants.length * v.eventsEach} events over ${v.tenants.length} consumer(s); clock from the webhook PUTs to the receiver having every event id; POLLGATE_PUSH_CONCURRENCY default`,
          prefillNote,
          `time (ms): ${rs.map((r) => r.ms.toFixed(0)).join(', ')}; requests received ${rs.map((r) => r.requests).join(', ')}, duplicates ${rs.map((r) => r.duplicates).join(', ')}`,
          `writer during the runs (from /metrics, includes the webhook PUT/DELETE commits): ${rs
            .map((r) => (r.commits ? `${r.commits.count} commits (${(r.commits.count / r.events).toFixed(2)} per delivery), ${r.commits.meanMs.toFixed(2)} ms each, loop in the writer ${(100 * r.commits.loopShare).toFixed(0)}%` : 'n/a'))
            .join('; ')}`,
          problems.length === 0 ? 'every event id arrived, first arrivals in log order per consumer' : `PROBLEMS: ${problems.slice(0, 5).join(' | ')}`,
        ],
      };
    });
    return { rows };
  },
};

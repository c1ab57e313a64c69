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
 *
 * 1 endpoint: one consumer's deliveries go one at a time, in log order (the contract), so its
 * bound is one round trip to the receiver per delivery. Right before each of its runs, the
 * bench measures that bound on the same receiver process and port: RTT_REQUESTS sequential
 * POSTs of a delivery's size and headers over one keep-alive connection from a raw client
 * (lib/raw-http.ts, in the bench process; the receiver answers 204 as it does to pollgate).
 * 1/RTT = requests ÷ time; the row's ratio is pollgate's deliveries/s ÷ that (target ≥ 0.9×).
 * The 100-consumer variants keep the absolute 10,000 deliveries/s target.
 */
import { createConsumers } from './lib/consumers.ts';
import { IpcChild } from './lib/ipc.ts';
import { prefill } from './lib/prefill.ts';
import { mainThreadProfile, renderProfile, summarizeProfile } from './lib/profile.ts';
import { monoMs, RawConnection, rawRequest } from './lib/raw-http.ts';
import type { Row, Scenario, ScenarioContext } from './lib/scenario.ts';
import { adminJson, readMetrics, startPollgate, type PollgateServer } from './lib/servers.ts';
import { spread } from './lib/stats.ts';
import { eventBody } from './publish.ts';

const TARGET = 10_000;
const RTT_TARGET = 0.9;
const RTT_REQUESTS = 2_000;
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

/**
 * One receiver's round-trip bound: RTT_REQUESTS sequential POSTs (each sent when the previous
 * answer is in) of a delivery's shape to port; answers requests/s (= 1/RTT) and the median RTT.
 * No webhook-id header: the receiver does not count them as deliveries.
 */
async function measureRtt(port: number): Promise<{ perS: number; p50Us: number }> {
  const conn = new RawConnection(port);
  await conn.connect();
  const body = JSON.stringify({ id: 'evt_0000000000000000000000', tenant: 'push-one', type: 'bench.push', time: new Date().toISOString(), data: { n: 1, text: 'x'.repeat(80) }, cursor: 't0000000000000001' });
  const request = rawRequest('POST', '/rtt', {
    body,
    headers: {
      'user-agent': 'pollgate/bench',
      'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
      'webhook-signature': `v1,${'A'.repeat(44)}`,
    },
  });
  const rtts: number[] = [];
  try {
    // A short warm-up, then the measured loop.
    for (let i = 0; i < 100; i++) await conn.request(request);
    const t0 = monoMs();
    for (let i = 0; i < RTT_REQUESTS; i++) {
      const sent = monoMs();
      const r = await conn.request(request);
      if (r.status !== 204) throw new Error(`the receiver answered ${r.status} to the round-trip probe`);
      rtts.push(r.at - sent);
    }
    const ms = monoMs() - t0;
    rtts.sort((a, b) => a - b);
    return { perS: (RTT_REQUESTS / ms) * 1000, p50Us: rtts[Math.floor(rtts.length / 2)]! * 1000 };
  } finally {
    conn.close();
  }
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
    const server = await startPollgate({ env: { POLLGATE_ALLOW_PRIVATE_TARGETS: '1' }, profileDir: ctx.profileDir, profileName: `push-${Date.now()}` });
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
    const rtt: Array<{ perS: number; p50Us: number }> = [];
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
          if (v.endpoints === 1 && v.tenants.length === 1) {
            const bound = await measureRtt(ports[0]!);
            if (run > 0) rtt.push(bound);
            ctx.log(`push: 1/RTT of the receiver: ${Math.round(bound.perS)} requests/s (RTT p50 ${bound.p50Us.toFixed(0)} µs)`);
          }
          const r = await runOnce(ctx, server, receiver, v.endpoints === 1 ? [ports[0]!] : ports, v);
          if (run > 0) results.get(v.name)!.push(r); // run 0 is the warm-up
        }
      }
    } finally {
      await receiver.close();
      await server.stop();
    }
    if (server.profileDir) {
      try {
        ctx.log(`push: pollgate ${renderProfile(summarizeProfile(mainThreadProfile(server.profileDir), { skipFirstMs: server.startupMs }))}`);
      } catch (error) {
        ctx.log(`push: could not read the profile in ${server.profileDir}: ${(error as Error).message}`);
      }
    }
    const rows: Row[] = variants.map((v) => {
      const rs = results.get(v.name)!;
      const p = spread(rs.map((r) => r.perS));
      const problems = rs.flatMap((r, i) => r.problems.map((x) => `run ${i + 1}: ${x}`));
      const oneEndpoint = v.endpoints === 1 && v.tenants.length === 1;
      const bound = oneEndpoint && rtt.length === rs.length ? spread(rtt.map((r) => r.perS)) : null;
      return {
        label: `push bridge to ${v.label} (deliveries/s)`,
        better: 'higher',
        pollgate: p,
        ...(oneEndpoint
          ? {
              baseline: bound,
              peer: '1/RTT, same receiver',
              pairRatios: bound ? rs.map((r, i) => r.perS / rtt[i]!.perS) : [],
              target: `≥ ${RTT_TARGET}× 1/RTT`,
              met: bound ? p.median >= RTT_TARGET * bound.median : null,
            }
          : { baseline: null, targetValue: TARGET, target: `≥ ${TARGET / 1000}k deliveries/s`, met: p.median >= TARGET }),
        failed: problems.length > 0,
        notes: [
          `${rs.length} runs (+1 warm-up) of ${v.tenants.length * v.eventsEach} events over ${v.tenants.length} consumer(s); clock from the webhook PUTs to the receiver having every event id; POLLGATE_PUSH_CONCURRENCY default`,
          ...(oneEndpoint && rtt.length
            ? [
                `1/RTT measured right before each run on the same receiver port: ${RTT_REQUESTS} sequential POSTs of a delivery's size and headers from a raw keep-alive client in the bench process: ` +
                  `${rtt.map((r) => Math.round(r.perS)).join(', ')} requests/s, RTT p50 ${rtt.map((r) => r.p50Us.toFixed(0)).join(', ')} µs; pollgate's time per delivery ${rs.map((r) => ((r.ms * 1000) / r.events).toFixed(0)).join(', ')} µs`,
              ]
            : []),
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

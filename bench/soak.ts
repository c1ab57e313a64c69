/**
 * soak: minutes of mixed load on one pollgate, sampled over time, ending with the proof that
 * nothing was lost. `SOAK_MINUTES` (default 5; 1 to try it), `SOAK_ENGINE=postgres` (default
 * SQLite), `SOAK_RATE` (events/s, default 300), `SOAK_POLL_WAIT` (seconds, default 25),
 * `SOAK_SAMPLE_SECONDS` (default 5).
 *
 * The load, all at once for the whole run:
 * 1. 10,000 consumers (tenants w00000…w09999, one each) long-poll without end from a separate
 *    process (lib/soak-poller.ts): wait=25 (the contract's and the SDK's default), limit=100, each next poll
 *    acking the cursor of the previous answer, so the 10,000 polls stay held as events arrive.
 * 2. A steady producer (lib/soak-publisher.ts): SOAK_RATE events/s as single events and
 *    batches of 2…10, every event with a producer id (a retry is idempotent); a fifth of the
 *    events go to the 20 tenants that also have push consumers, the rest anywhere in the 10,000.
 * 3. 20 push consumers on w00000…w00019 with webhooks to receivers in another process
 *    (lib/soak-receiver.ts, 4 ports): 13 answer 200, 2 are flaky (500 to the first attempt of
 *    every 4th event), 2 always answer 500, 1 resets the connection, 1 accepts 25 events and
 *    then answers 500, 1 never answers (timeout_ms 2000). The failing ones share a port with
 *    two healthy ones. Retries come fast (POLLGATE_RETRY_SCHEDULE=500ms,1s,2s) so the failure
 *    paths run hundreds of times, not four.
 *
 * Every SOAK_SAMPLE_SECONDS: the server's RSS and open fds (/proc), CPU, and its /metrics
 * (event-loop delay p99 and max over the interval — prom-client resets the histogram at each
 * scrape and the soak is the only scraper —, held polls, heap, delivery outcomes, lag), with
 * what the publisher, the poll fleet and the receivers counted. One table row per ~30 s.
 *
 * After the run: the producer stops and every acknowledged event must reach (a) the polling
 * consumer of its tenant and (b) every healthy webhook of its tenant, in the same order as the
 * poll saw it; (c) each failing webhook's committed cursor must be exactly the cursor of the
 * last event its receiver accepted (or where it started), with the lag the log says: nothing
 * acked that was not delivered. Then SIGTERM with 10,000 polls held and a webhook request hung
 * must end in exit 0.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { consumerFixture, createConsumers, POLL_TENANTS, pollTenant, type Consumer } from './lib/consumers.ts';
import { IpcChild } from './lib/ipc.ts';
import { createDatabase, postgresUnavailable, type BenchDatabase } from './lib/postgres.ts';
import { scrape, type Scrape } from './lib/prom-text.ts';
import { cpuSeconds, openFilesLimit, rssKiB } from './lib/proc.ts';
import type { Row, Scenario, ScenarioContext } from './lib/scenario.ts';
import { ADMIN_KEY, adminJson, listeningPorts, startPollgate, type PollgateServer } from './lib/servers.ts';
import type { PollerStats } from './lib/soak-poller.ts';
import { seededRandom, SoakPublisher } from './lib/soak-publisher.ts';
import type { Behaviour, ReceiverStats } from './lib/soak-receiver.ts';
import { foldRows, heapLows, renderSeries, trend, type SoakSample } from './lib/soak-series.ts';
import { fmt, spread } from './lib/stats.ts';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 5);
const ENGINE = process.env.SOAK_ENGINE === 'postgres' ? 'postgres' : 'sqlite';
const RATE = Number(process.env.SOAK_RATE ?? 300);
const SAMPLE_S = Number(process.env.SOAK_SAMPLE_SECONDS ?? 5);
/** The SDK's default wait: 10,000 consumers then ask for ~400 empty answers a second between them. */
const POLL_WAIT_S = Number(process.env.SOAK_POLL_WAIT ?? 25);
const POLL_LIMIT = 100;
const HOT_SHARE = 0.2;
const RECEIVER_PORTS = 4;
const STOPS_AFTER = 25;
const HANG_TIMEOUT_MS = 2000;
const RETRY_SCHEDULE = '500ms,1s,2s';
const DRAIN_TIMEOUT_MS = 60_000;
const ARM_TIMEOUT_MS = 90_000;
/** Flat: the fitted growth over the steady part stays under this share of the first value. */
const RSS_FLAT = 0.05;
const FDS_FLAT = 0.01;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface PushSpec {
  behaviour: Behaviour;
  port: number;
}

/** Push consumer i is on tenant w0000i; the failing ones share port 3 with two healthy ones. */
const PUSH: PushSpec[] = [
  ...Array.from({ length: 10 }, (_, i): PushSpec => ({ behaviour: 'ok', port: i % 3 })),
  { behaviour: 'flaky', port: 0 },
  { behaviour: 'flaky', port: 1 },
  { behaviour: 'ok', port: 3 },
  { behaviour: 'ok', port: 3 },
  { behaviour: 'fail', port: 3 },
  { behaviour: 'fail', port: 3 },
  { behaviour: 'reset', port: 3 },
  { behaviour: 'stops', port: 3 },
  { behaviour: 'hang', port: 3 },
  { behaviour: 'ok', port: 2 },
];
const healthy = (b: Behaviour) => b === 'ok' || b === 'flaky';

interface PushConsumer extends Consumer {
  spec: PushSpec;
  /** The receiver's endpoint key (port + path) and the consumer's cursor when it was created. */
  endpoint: string;
  startCursor: string;
}

interface ServerUnderTest {
  server: PollgateServer;
  pollers: Consumer[];
  database: BenchDatabase | null;
}

async function startServer(ctx: ScenarioContext): Promise<ServerUnderTest> {
  const env = { POLLGATE_ALLOW_PRIVATE_TARGETS: '1', POLLGATE_RETRY_SCHEDULE: RETRY_SCHEDULE };
  if (ENGINE === 'sqlite') {
    // A fresh process on a copy of the run's template: 10,000 consumers, one per tenant.
    const fixture = await consumerFixture(ctx);
    return { server: await startPollgate({ template: fixture.template, env }), pollers: fixture.perTenant, database: null };
  }
  const unavailable = postgresUnavailable();
  if (unavailable) throw new Error(unavailable);
  const database = createDatabase('pollgate_soak');
  try {
    const server = await startPollgate({ env: { ...env, POLLGATE_DATABASE_URL: database.url } });
    const t0 = Date.now();
    const pollers = await createConsumers(server, Array.from({ length: POLL_TENANTS }, (_, i) => pollTenant(i)));
    ctx.log(`soak: created ${pollers.length} consumers on PostgreSQL in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return { server, pollers, database };
  } catch (error) {
    database.drop();
    throw error;
  }
}

function openFds(pid: number): { fds: number; sockets: number } {
  let fds = 0;
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    fds += 1;
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) sockets += 1;
    } catch {
      // closed meanwhile
    }
  }
  return { fds, sockets };
}

/**
 * p99 and max of the event-loop delay since the previous scrape. An interval in which the
 * loop's 10-ms timer never ran (two scrapes served in one loop turn) has an empty histogram,
 * which reads 0: that is no measurement, not a zero delay.
 */
function eventLoopDelay(m: Scrape): { eldP99Ms: number; eldMaxMs: number } {
  const max = m.get('nodejs_eventloop_lag_max_seconds');
  if (!(max > 0)) return { eldP99Ms: Number.NaN, eldMaxMs: Number.NaN };
  return { eldP99Ms: m.get('nodejs_eventloop_lag_p99_seconds') * 1000, eldMaxMs: max * 1000 };
}

/** How long a trivial request (GET /healthz) takes under the load: the server's responsiveness. */
async function timeHealthz(server: PollgateServer): Promise<number> {
  const t0 = performance.now();
  try {
    const res = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(60_000) });
    await res.arrayBuffer();
    return performance.now() - t0;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of the load's own processes (the bench, the poll fleet, the receivers). */
function clientCpuSeconds(children: IpcChild[]): number {
  const own = process.cpuUsage();
  return (own.user + own.system) / 1e6 + children.reduce((n, c) => n + (cpuSeconds(c.child.pid) ?? 0), 0);
}

/** Counters of /metrics whose increase over an interval the samples report. */
function counters(m: Scrape) {
  return {
    pushOk: m.get('pollgate_webhook_deliveries_total', { outcome: 'ok' }) || 0,
    pushAll: m.get('pollgate_webhook_deliveries_total') || 0,
    pollTimeouts: m.get('pollgate_poll_outcomes_total', { outcome: 'timeout' }) || 0,
    polls: m.get('pollgate_poll_outcomes_total') || 0,
    gcS: m.get('nodejs_gc_duration_seconds_sum') || 0,
    commitS: m.get('pollgate_commit_duration_seconds_sum') || 0,
  };
}

export const scenario: Scenario = {
  name: 'soak',
  title: `minutes of mixed load (SOAK_MINUTES, default 5): 10,000 held polls, steady publishing, push to healthy, failing and hanging receivers; RSS, fds, event-loop delay over time; zero lost`,
  async run(ctx) {
    if (!(MINUTES > 0) || !(RATE > 0) || !(SAMPLE_S >= 1)) throw new Error('SOAK_MINUTES and SOAK_RATE must be > 0, SOAK_SAMPLE_SECONDS ≥ 1');
    const label = `soak ${fmt(MINUTES)} min on ${ENGINE === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`;
    const durationS = MINUTES * 60;
    const rowS = durationS >= 180 ? 30 : 10;
    const warmupS = Math.min(60, durationS * 0.2);

    const receiver = new IpcChild('bench/lib/soak-receiver.ts', 'soak receiver');
    const poller = new IpcChild('bench/lib/soak-poller.ts', 'soak poll fleet');
    let sut: ServerUnderTest | null = null;
    let publisher: SoakPublisher | null = null;
    try {
      const nofile = openFilesLimit(poller.child.pid);
      if (nofile !== null && nofile < POLL_TENANTS + 100) throw new Error(`the poll fleet's open-files limit is ${nofile}; it needs ${POLL_TENANTS + 100}`);
      const { ports } = await receiver.request<{ ports: number[] }>({ op: 'listen', ports: RECEIVER_PORTS });
      sut = await startServer(ctx);
      const { server } = sut;
      const pid = server.child.proc.pid!;

      // Push consumers: created (at the tenant's head, i.e. before any soak event), then their webhooks.
      const created = await createConsumers(server, PUSH.map((_, i) => pollTenant(i)));
      const pushers: PushConsumer[] = [];
      for (const [i, c] of created.entries()) {
        const spec = PUSH[i]!;
        const path = `/${spec.behaviour}/${i}${spec.behaviour === 'stops' ? `?after=${STOPS_AFTER}` : ''}`;
        const view = await adminJson<{ cursor: string }>(server, 'GET', `/v1/consumers/${c.id}`, undefined, 200);
        const hook: Record<string, unknown> = { url: `http://127.0.0.1:${ports[spec.port]}${path}` };
        if (spec.behaviour === 'hang') hook.timeout_ms = HANG_TIMEOUT_MS;
        await adminJson(server, 'PUT', `/v1/consumers/${c.id}/webhook`, hook, 201);
        pushers.push({ ...c, spec, endpoint: `${ports[spec.port]}${path}`, startCursor: view.cursor });
      }
      const failingIds = new Set(pushers.filter((p) => !healthy(p.spec.behaviour)).map((p) => p.id));

      // The poll fleet: every consumer holding a poll before the producer starts.
      await poller.request({ op: 'init', port: server.port, keys: sut.pollers.map((c) => c.key), waitS: POLL_WAIT_S, limit: POLL_LIMIT });
      const armed = await poller.request<{ ms: number }>({ op: 'start' }, 180_000);
      // A server that cannot start polls as fast as they time out never holds them all: then
      // the soak goes on with what it holds, and the held-polls row says so.
      let heldAtStart = 0;
      for (const deadline = Date.now() + ARM_TIMEOUT_MS; ; ) {
        heldAtStart = (await scrape(server)).get('pollgate_polls_held');
        if (heldAtStart >= POLL_TENANTS - 10 || Date.now() > deadline) break;
        await sleep(500);
      }
      ctx.log(`soak: ${heldAtStart} of ${POLL_TENANTS} polls held (sent in ${(armed.ms / 1000).toFixed(1)} s)`);

      // The load, sampled.
      const random = seededRandom(7);
      publisher = new SoakPublisher(server, {
        rate: RATE,
        tenant: () => (random() < HOT_SHARE ? pollTenant(Math.floor(random() * PUSH.length)) : pollTenant(Math.floor(random() * POLL_TENANTS))),
      });
      const loadStart = os.loadavg()[0]!;
      const samples: SoakSample[] = [];
      let m0 = await scrape(server);
      await poller.request({ op: 'stats' });
      await receiver.request({ op: 'stats' });
      let cpu0 = cpuSeconds(pid) ?? 0;
      let clientCpu0 = clientCpuSeconds([poller, receiver]);
      // A control: the bench's own loop (light work) measured like the server's. What it shows,
      // the machine's other load did; what only the server shows is the server's own.
      const benchLoop = monitorEventLoopDelay({ resolution: 10 });
      benchLoop.enable();
      const t0 = performance.now();
      let tPrev = t0;
      let tProcPrev = t0;
      publisher.start();
      ctx.log(`soak: ${label}, ${RATE} events/s, samples every ${SAMPLE_S} s, a row every ${rowS} s`);
      let printedRows = 0;
      while (performance.now() - t0 < durationS * 1000 - 100) {
        // The next slot of the SAMPLE_S grid; slots a slow scrape overran are skipped, not caught up.
        const elapsed = performance.now() - t0;
        await sleep((Math.floor(elapsed / (SAMPLE_S * 1000)) + 1) * SAMPLE_S * 1000 - elapsed);
        const tProc = performance.now();
        const rss = rssKiB(pid);
        if (rss === null) throw new Error(`pollgate exited during the soak:\n${server.child.tail()}`);
        const { fds, sockets } = openFds(pid);
        const cpu1 = cpuSeconds(pid) ?? cpu0;
        const clientCpu1 = clientCpuSeconds([poller, receiver]);
        const procS = (tProc - tProcPrev) / 1000;
        tProcPrev = tProc;
        const healthzMs = await timeHealthz(server);
        const [m1, p, r] = await Promise.all([
          scrape(server),
          poller.request<PollerStats>({ op: 'stats' }),
          receiver.request<ReceiverStats>({ op: 'stats' }),
        ]);
        const pub = publisher.stats();
        const now = performance.now();
        const intervalS = (now - tPrev) / 1000;
        tPrev = now;
        const c0 = counters(m0);
        const c1 = counters(m1);
        const lags = m1.all('pollgate_consumer_lag').filter((s) => !failingIds.has(s.labels.consumer ?? ''));
        samples.push({
          t: (now - t0) / 1000,
          intervalS,
          rssMiB: rss / 1024,
          fds,
          sockets,
          heapUsedMiB: m1.get('nodejs_heap_size_used_bytes') / 2 ** 20,
          cpuPct: (100 * (cpu1 - cpu0)) / procS,
          clientCpuPct: (100 * (clientCpu1 - clientCpu0)) / procS,
          loadavg1: os.loadavg()[0]!,
          ...eventLoopDelay(m1),
          benchEldP99Ms: benchLoop.count > 0 ? benchLoop.percentile(99) / 1e6 : Number.NaN,
          benchEldMaxMs: benchLoop.count > 0 ? benchLoop.max / 1e6 : Number.NaN,
          scrapeMs: m1.ms,
          scrape503: m1.unavailable,
          healthzMs,
          held: m1.get('pollgate_polls_held'),
          pollsOpen: p.inFlight,
          publishedEvents: pub.events,
          publishP99Ms: pub.latency.p99,
          publishRetries: Object.values(pub.retries).reduce((a, b) => a + b, 0),
          shed: pub.shed,
          pollEvents: p.events,
          pollRepeats: p.repeats,
          pollNon200: Object.entries(p.statuses).reduce((n, [status, count]) => n + (status === '200' ? 0 : count), 0),
          pollP99Ms: p.latency.p99,
          pollTimeouts: c1.pollTimeouts - c0.pollTimeouts,
          polls: c1.polls - c0.polls,
          gcPct: (100 * (c1.gcS - c0.gcS)) / intervalS,
          writerPct: (100 * (c1.commitS - c0.commitS)) / intervalS,
          pushOk: c1.pushOk - c0.pushOk,
          pushFailed: c1.pushAll - c1.pushOk - (c0.pushAll - c0.pushOk),
          pushP99Ms: r.latency.p99,
          hungOpen: r.hungOpen,
          webhookConnections: r.connections,
          lagging: m1.get('pollgate_consumers_lagging'),
          healthyLagMax: Math.max(0, ...lags.map((s) => s.value)),
        });
        if (p.oddSample.length > 0) ctx.log(`soak: odd poll answers: ${p.oddSample.join(' | ')}`);
        benchLoop.reset();
        m0 = m1;
        cpu0 = cpu1;
        clientCpu0 = clientCpu1;
        const rows = foldRows(samples, rowS);
        const complete = rows.length - 1;
        for (; printedRows < complete; printedRows++) {
          const row = rows[printedRows]!;
          ctx.log(
            `soak t=${Math.round(row.t)} s: RSS ${fmt(row.rssMiB)} MiB, fds ${row.fds}, held ≥${row.heldMin}, publish ${fmt(row.publishPerS)}/s, ` +
              `poll ${fmt(row.pollPerS)} ev/s (p99 ${fmt(row.pollP99Ms)} ms), push ok ${fmt(row.pushOkPerS)}/s failed ${fmt(row.pushFailedPerS)}/s, ` +
              `ELD p99 ${fmt(row.eldP99Ms)} max ${fmt(row.eldMaxMs)} ms, CPU ${fmt(row.cpuPct)} %, load ${row.loadavg1.toFixed(2)}`,
          );
        }
      }

      // Drain: the producer stops; every acknowledged event must arrive.
      await publisher.stop();
      const loadEnd = os.loadavg()[0]!;
      const acknowledged = publisher.acknowledged();
      const sent = publisher.events.length - 1;
      ctx.log(`soak: load done; ${acknowledged} of ${sent} events acknowledged; draining`);
      const drainStart = Date.now();
      let check = await verify(server, poller, receiver, publisher, sut.pollers, pushers);
      while ((check.lostPoll.length > 0 || check.lostPush.length > 0) && Date.now() - drainStart < DRAIN_TIMEOUT_MS) {
        await sleep(1000);
        check = await verify(server, poller, receiver, publisher, sut.pollers, pushers);
      }
      // Cursors of healthy webhooks are recorded behind the deliveries: give them a moment.
      let final = await scrape(server);
      for (const deadline = Date.now() + 15_000; final.get('pollgate_consumers_lagging') > failingIds.size && Date.now() < deadline; ) {
        await sleep(500);
        final = await scrape(server);
      }
      check = await verify(server, poller, receiver, publisher, sut.pollers, pushers);
      const drainMs = Date.now() - drainStart;
      const lagging = final.get('pollgate_consumers_lagging');
      const heldAtEnd = final.get('pollgate_polls_held');
      if (lagging !== failingIds.size) check.problems.push(`${lagging} consumers lagging at the end, want exactly the ${failingIds.size} failing webhooks`);
      if (publisher.rejected.length > 0) check.problems.push(`publishes rejected: ${publisher.rejected.slice(0, 3).join(' | ')}`);
      const hungAtEnd = (await receiver.request<ReceiverStats>({ op: 'stats' })).hungOpen;

      // SIGTERM with every poll held and (most likely) one webhook request hung.
      const stopT0 = performance.now();
      const exitCode = await server.stop();
      const stopMs = performance.now() - stopT0;
      if (exitCode !== 0) check.problems.push(`SIGTERM: exit ${exitCode} after ${stopMs.toFixed(0)} ms`);
      ctx.log(`soak: SIGTERM with ${heldAtEnd} polls held → exit ${exitCode} in ${stopMs.toFixed(0)} ms`);

      // The figures.
      const steady = samples.filter((s) => s.t >= warmupS);
      const rss = trend(steady, (s) => s.rssMiB);
      const fdTrend = trend(steady, (s) => s.fds);
      const heap = trend(steady, (s) => s.heapUsedMiB);
      const lows = heapLows(steady, 60);
      const rows = foldRows(samples, rowS);
      const series = renderSeries(rows);
      const worst = <K extends keyof SoakSample>(k: K) => Math.max(...samples.map((s) => s[k] as number).filter((v) => !Number.isNaN(v)));
      const totals = {
        sent,
        acknowledged,
        publishRetries: samples.reduce((n, s) => n + s.publishRetries, 0),
        shed: samples.reduce((n, s) => n + s.shed, 0),
        pollEvents: samples.reduce((n, s) => n + s.pollEvents, 0),
        pollRepeats: samples.reduce((n, s) => n + s.pollRepeats, 0),
        pollNon200: samples.reduce((n, s) => n + s.pollNon200, 0),
        pollTimeouts: samples.reduce((n, s) => n + s.pollTimeouts, 0),
        pushOk: samples.reduce((n, s) => n + s.pushOk, 0),
        pushFailed: samples.reduce((n, s) => n + s.pushFailed, 0),
        hungOpenMax: worst('hungOpen'),
        webhookConnectionsMax: worst('webhookConnections'),
        scrapeMsMax: worst('scrapeMs'),
        healthzMsMax: worst('healthzMs'),
        scrape503: samples.reduce((n, s) => n + s.scrape503, 0),
      };
      const summary = [
        `RSS first ${fmt(rss.first)} → last ${fmt(rss.last)} MiB (min ${fmt(rss.min)}, max ${fmt(rss.max)}), fitted ${rss.perMinute >= 0 ? '+' : ''}${fmt(rss.perMinute)} MiB/min over the steady ${Math.round(rss.spanS)} s`,
        `open fds first ${fdTrend.first} → last ${fdTrend.last} (min ${fdTrend.min}, max ${fdTrend.max}), fitted ${fdTrend.perMinute >= 0 ? '+' : ''}${fmt(fdTrend.perMinute)}/min`,
        `JS heap used first ${fmt(heap.first)} → last ${fmt(heap.last)} MiB (min ${fmt(heap.min)}, max ${fmt(heap.max)}); its low point in each minute of the steady part (what stays alive): ${lows.map((l) => fmt(l.mib)).join(', ')} MiB`,
        `event-loop delay: worst p99 of a ${SAMPLE_S}-s interval ${fmt(worst('eldP99Ms'))} ms, worst max ${fmt(worst('eldMaxMs'))} ms; the bench's own loop in the same intervals: worst p99 ${fmt(worst('benchEldP99Ms'))} ms, worst max ${fmt(worst('benchEldMaxMs'))} ms (both sample every 10 ms: an idle loop reads ~10.1 ms)`,
      ];
      process.stdout.write(
        `\n${label}: time series (a row per ${rowS} s; latencies and ELD are the worst ${SAMPLE_S}-s interval of the row; "steady" starts at ${Math.round(warmupS)} s)\n\n${series}\n\n${summary.map((l) => `- ${l}`).join('\n')}\n`,
      );

      const lost = check.lostPoll.length + check.lostPush.length;
      const failed = lost > 0 || check.problems.length > 0;
      const notes = [
        `${POLL_TENANTS.toLocaleString('en-US')} consumers polling (wait=${POLL_WAIT_S}, limit=${POLL_LIMIT}, ack= in every poll) from one client process; ${RATE} events/s (${fmt(100 * HOT_SHARE)} % to the ${PUSH.length} push tenants), singles and batches of 2–10 with producer ids; ${PUSH.length} webhooks: ${summarisePush(pushers)}; POLLGATE_RETRY_SCHEDULE=${RETRY_SCHEDULE}`,
        `load average ${loadStart.toFixed(2)} at the start, ${loadEnd.toFixed(2)} at the end (2 shared cores)`,
        `published ${sent} events, ${acknowledged} acknowledged (${totals.publishRetries} requests retried, ${totals.shed} events shed by the in-flight cap); ` +
          `polls: ${totals.pollEvents} events received, ${totals.pollRepeats} repeats, ${totals.pollTimeouts} timeouts (empty answers), ${totals.pollNon200} answers other than 200; ` +
          `push: ${totals.pushOk} deliveries ok, ${totals.pushFailed} failed attempts; at most ${totals.hungOpenMax} requests hung open at the receiver and ${totals.webhookConnectionsMax} connections open to the receivers`,
        lost === 0
          ? `lost: 0 — every acknowledged event reached its tenant's polling consumer (${check.pollChecked} checks) and every healthy webhook of its tenant (${check.pushChecked} checks), webhooks in the poll's order`
          : `LOST: ${lost} acknowledged deliveries not received ${(DRAIN_TIMEOUT_MS / 1000).toFixed(0)} s after the load ended (of ${check.pollChecked} poll and ${check.pushChecked} webhook checks): ${[...check.lostPoll, ...check.lostPush].slice(0, 10).join(', ')}`,
        `failing webhooks kept their cursors behind: ${check.failing.join('; ')}`,
        ...summary,
        `drain after the load ${(drainMs / 1000).toFixed(1)} s; consumers lagging at the end ${lagging} (want ${failingIds.size}); polls held at the end ${heldAtEnd}; hung requests open at the end ${hungAtEnd}; SIGTERM → exit ${exitCode} in ${stopMs.toFixed(0)} ms; GET /healthz took at most ${fmt(totals.healthzMsMax)} ms (median ${fmt(spread(samples.map((s) => s.healthzMs).filter((x) => !Number.isNaN(x))).median)} ms), a /metrics scrape at most ${fmt(totals.scrapeMsMax)} ms${totals.scrape503 > 0 ? ` (and ${totals.scrape503} scrapes answered 503 "database unavailable" first)` : ''}`,
        check.problems.length === 0 ? 'every check passed' : `PROBLEMS: ${check.problems.slice(0, 8).join(' | ')}`,
      ];
      const ms = (xs: number[]) => spread(xs.filter((x) => !Number.isNaN(x)));
      const rowsOut: Row[] = [
        {
          label: `${label}: lost events (of ${acknowledged.toLocaleString('en-US')} acknowledged)`,
          better: 'lower',
          pollgate: spread([lost]),
          baseline: null,
          baselineText: '—',
          target: '0',
          met: lost === 0,
          failed,
          notes,
        },
        {
          label: `${label}: polls held per sample`,
          better: 'higher',
          pollgate: spread(samples.map((s) => s.held)),
          baseline: null,
          baselineText: `polls open at the client: ${fmtSpreadText(spread(samples.map((s) => s.pollsOpen)))}; ${fmt(spread(samples.map((s) => s.polls / s.intervalS)).median)} polls/s served`,
          notes: [],
        },
        {
          label: `${label}: server RSS per sample, steady part (MiB)`,
          better: 'lower',
          pollgate: spread(steady.map((s) => s.rssMiB)),
          baseline: null,
          baselineText: `first ${fmt(rss.first)} → last ${fmt(rss.last)}, ${rss.perMinute >= 0 ? '+' : ''}${fmt(rss.perMinute)}/min`,
          target: `flat (fitted growth < ${RSS_FLAT * 100} %)`,
          met: rss.growth < RSS_FLAT * rss.first,
          notes: [],
        },
        {
          label: `${label}: server open fds per sample, steady part`,
          better: 'lower',
          pollgate: spread(steady.map((s) => s.fds)),
          baseline: null,
          baselineText: `first ${fdTrend.first} → last ${fdTrend.last}, ${fdTrend.perMinute >= 0 ? '+' : ''}${fmt(fdTrend.perMinute)}/min`,
          target: `flat (fitted growth < ${FDS_FLAT * 100} %)`,
          met: fdTrend.growth < FDS_FLAT * fdTrend.first,
          notes: [],
        },
        {
          label: `${label}: event-loop delay p99 per ${SAMPLE_S} s (ms)`,
          better: 'lower',
          pollgate: ms(samples.map((s) => s.eldP99Ms)),
          baseline: null,
          baselineText: `max per ${SAMPLE_S} s: ${fmtSpreadText(ms(samples.map((s) => s.eldMaxMs)))}`,
          notes: [],
        },
        {
          label: `${label}: publish → poll answer p99 per ${SAMPLE_S} s (ms)`,
          better: 'lower',
          pollgate: ms(samples.map((s) => s.pollP99Ms)),
          baseline: null,
          baselineText: `publish → healthy webhook: ${fmtSpreadText(ms(samples.map((s) => s.pushP99Ms)))}`,
          notes: [],
        },
      ];
      return {
        rows: rowsOut,
        details: {
          engine: ENGINE,
          minutes: MINUTES,
          rate: RATE,
          sampleS: SAMPLE_S,
          loadavg: { start: loadStart, end: loadEnd },
          totals,
          trends: { rss, fds: fdTrend, heap, heapLows: lows },
          check,
          lagging,
          heldAtStart,
          heldAtEnd,
          stop: { exitCode, ms: stopMs },
          series,
          rows,
          samples,
        },
      };
    } catch (error) {
      // Say what the server was doing: gone (and its last lines), or still up.
      const proc = sut?.server.child.proc;
      let state = !proc ? 'not started' : proc.exitCode !== null || proc.signalCode !== null ? `exited (${proc.exitCode ?? proc.signalCode})` : 'still running';
      if (state === 'still running' && sut) {
        // A running server that no longer listens is stopping: it was signalled.
        const ports = listeningPorts(proc!.pid!);
        state += ports.includes(sut.server.port) ? `, still listening on ${sut.server.port}` : `, NOT listening on ${sut.server.port} any more (listening: ${ports.join(', ') || 'nothing'}): stopping, so something signalled it`;
      }
      const cause = (error as Error).cause ? ` (cause: ${String((error as Error).cause)})` : '';
      throw new Error(`${(error as Error).message}${cause}; pollgate ${state}; its last output:\n${sut?.server.child.tail() ?? ''}`, { cause: error });
    } finally {
      publisher?.abandon();
      await poller.close();
      await receiver.close();
      if (sut) {
        await sut.server.stop();
        sut.database?.drop();
      }
    }
  },
};

function fmtSpreadText(s: { median: number; min: number; max: number }): string {
  return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}

function summarisePush(pushers: PushConsumer[]): string {
  const counts = new Map<Behaviour, number>();
  for (const p of pushers) counts.set(p.spec.behaviour, (counts.get(p.spec.behaviour) ?? 0) + 1);
  return [...counts].map(([b, n]) => `${n} ${b}${b === 'stops' ? ` (after ${STOPS_AFTER})` : b === 'hang' ? ` (timeout_ms ${HANG_TIMEOUT_MS})` : ''}`).join(', ');
}

/** GET /v1/consumers/:id, waiting out 503s (the database busy or away: the contract says retry). */
async function consumerView(server: PollgateServer, id: string): Promise<{ cursor: string; lag: number; mode: string }> {
  for (const deadline = Date.now() + 60_000; ; ) {
    let res: Response;
    try {
      res = await fetch(`${server.url}/v1/consumers/${id}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: AbortSignal.timeout(30_000) });
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(1000);
      continue;
    }
    const text = await res.text();
    if (res.status === 200) return JSON.parse(text) as { cursor: string; lag: number; mode: string };
    if (res.status !== 503 || Date.now() > deadline) throw new Error(`GET /v1/consumers/${id} answered ${res.status}: ${text.slice(0, 300)}`);
    await sleep(1000 * Math.min(5, Number(res.headers.get('retry-after')) || 1));
  }
}

interface Check {
  lostPoll: string[];
  lostPush: string[];
  pollChecked: number;
  pushChecked: number;
  /** One line per failing webhook: its cursor against the last event its receiver accepted. */
  failing: string[];
  problems: string[];
}

/**
 * (a) every acknowledged event is among its tenant's poll consumer's events; (b) every healthy
 * webhook's receiver accepted every acknowledged event of its tenant; (c) no webhook's
 * committed cursor is past what its receiver accepted: it is where the consumer started or the
 * cursor of an event the receiver answered 2xx (deliveries go one at a time in log order, so
 * a cursor moves only over delivered events). The consumers are read before the receivers'
 * records, so a delivery landing in between cannot make (c) fail.
 * Once (a) and (b) hold (everything arrived, nothing more is on its way), exactly: each
 * webhook's cursor is the cursor of the last event its receiver accepted, its lag is the
 * tenant's events after that, and a healthy webhook accepted the events in the poll's order.
 */
async function verify(
  server: PollgateServer,
  poller: IpcChild,
  receiver: IpcChild,
  publisher: SoakPublisher,
  pollers: Consumer[],
  pushers: PushConsumer[],
): Promise<Check> {
  const views: Array<{ cursor: string; lag: number; mode: string }> = [];
  for (const p of pushers) views.push(await consumerView(server, p.id));
  const [{ order }, { endpoints }] = await Promise.all([
    poller.request<{ order: number[][] }>({ op: 'received' }),
    receiver.request<{ endpoints: Record<string, Array<[number, number]>> }>({ op: 'received' }),
  ]);
  const indexOfTenant = new Map(pollers.map((c, i) => [c.tenant, i]));
  const seen = order.map((o) => new Set(o));
  const out: Check = { lostPoll: [], lostPush: [], pollChecked: 0, pushChecked: 0, failing: [], problems: [] };
  const ackedByTenant = new Map<string, number[]>();
  /** tenant + cursor → the event's sequence number (cursors are compared, never parsed). */
  const seqOfCursor = new Map<string, number>();
  publisher.events.forEach((e, seq) => {
    if (e.cursor === null) return;
    seqOfCursor.set(`${e.tenant} ${e.cursor}`, seq);
    const i = indexOfTenant.get(e.tenant)!;
    out.pollChecked += 1;
    if (!seen[i]!.has(seq)) out.lostPoll.push(`soak-${seq} (poll ${e.tenant})`);
    let list = ackedByTenant.get(e.tenant);
    if (!list) ackedByTenant.set(e.tenant, (list = []));
    list.push(seq);
  });
  const accepted = pushers.map((p) => {
    const list: number[] = [];
    const set = new Set<number>();
    for (const [seq, status] of endpoints[p.endpoint] ?? []) {
      if (status >= 200 && status < 300 && !set.has(seq)) {
        set.add(seq);
        list.push(seq);
      }
    }
    return { list, set, attempts: (endpoints[p.endpoint] ?? []).length };
  });
  for (const [n, p] of pushers.entries()) {
    if (!healthy(p.spec.behaviour)) continue;
    for (const seq of ackedByTenant.get(p.tenant) ?? []) {
      out.pushChecked += 1;
      if (!accepted[n]!.set.has(seq)) out.lostPush.push(`soak-${seq} (webhook ${p.spec.behaviour} ${p.tenant})`);
    }
  }
  const complete = out.lostPoll.length === 0 && out.lostPush.length === 0;
  for (const [n, p] of pushers.entries()) {
    const view = views[n]!;
    const { list, set, attempts } = accepted[n]!;
    const where = `${p.spec.behaviour} ${p.tenant}`;
    const committedSeq = view.cursor === p.startCursor ? null : seqOfCursor.get(`${p.tenant} ${view.cursor}`);
    if (committedSeq === undefined) out.problems.push(`${where}: committed cursor ${view.cursor} is neither where it started nor an acknowledged event's`);
    else if (committedSeq !== null && !set.has(committedSeq)) out.problems.push(`${where}: committed cursor ${view.cursor} (soak-${committedSeq}) was never accepted by its receiver`);
    const logOrder = order[indexOfTenant.get(p.tenant)!]!;
    const last = list.at(-1);
    const wantCursor = last === undefined ? p.startCursor : (publisher.events[last]?.cursor ?? null);
    const wantLag = last === undefined ? logOrder.length : logOrder.length - (logOrder.indexOf(last) + 1);
    if (!healthy(p.spec.behaviour)) {
      out.failing.push(
        `${where}: ${list.length} accepted of ${logOrder.length}, ${attempts} attempts, cursor ${view.cursor === wantCursor ? 'at' : 'NOT at'} the last accepted (${wantCursor}), lag ${view.lag}${complete ? ` (want ${wantLag})` : ''}, mode ${view.mode}`,
      );
    }
    if (!complete) continue;
    if (view.cursor !== wantCursor) out.problems.push(`${where}: committed cursor ${view.cursor}, want ${wantCursor} (last accepted ${last === undefined ? 'none' : `soak-${last}`})`);
    if (view.lag !== wantLag) out.problems.push(`${where}: lag ${view.lag}, want ${wantLag}`);
    if (healthy(p.spec.behaviour)) {
      const at = list.findIndex((seq, i) => seq !== logOrder[i]);
      if (at >= 0 || list.length !== logOrder.length) out.problems.push(`${where}: accepted order differs from the poll's at #${at < 0 ? list.length : at + 1}`);
    }
  }
  return out;
}

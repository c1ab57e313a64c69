/**
 * publish-held: does holding 10,000 long-polls slow publishing down?
 *
 * One pollgate (a copy of the fixture: 10,000 consumers on tenants w00000…w09999). The same
 * wrk load as the publish bench (one ~110-byte event per POST, 64 connections, 2 threads,
 * tenants t000…t099) runs alternately
 *   - with no poll held, and
 *   - while 10,000 polls (wait=60, one per consumer, held by lib/poll-client.ts in its own
 *     process) are held on the w-tenants, which receive none of the published events.
 * Order per run: none/held, held/none, none/held… (so a drift over time hits both sides), and
 * 1.5 s of rest before each run (after arming 10,000 polls, or after releasing them).
 * Before a "held" run the server must report all 10,000 held; after it the client must still
 * have no answer (nothing woke them, none timed out); then the polls are dropped (sockets
 * closed) and the server must report 0 held before the next "none" run.
 * The log is checked around every run as in the publish bench (lib/duel.ts).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { consumerFixture, heldPolls, POLL_TENANTS, waitForCount } from './lib/consumers.ts';
import { checkLog, commitStats, type LogCheck } from './lib/duel.ts';
import { PollFleet } from './lib/poll-fleet.ts';
import { cpuSeconds, makeTempDir, openFilesLimit, removeTempDir } from './lib/proc.ts';
import type { Row, Scenario } from './lib/scenario.ts';
import { ADMIN_KEY, readHead, readMetrics, startPollgate } from './lib/servers.ts';
import { spread } from './lib/stats.ts';
import { ensureWrk, runWrk, type WrkResult } from './lib/wrk.ts';
import { eventBody, TENANTS } from './publish.ts';
import { pollgateSpecs } from './wake.ts';

const CONNECTIONS = 64;
const THREADS = 2;
const WAIT_S = 60;
const TARGET = 0.9;
const SETTLE_MS = 1500;

interface Run extends WrkResult {
  held: boolean;
  cpuPerEventUs: number;
  check: LogCheck;
}

export const scenario: Scenario = {
  name: 'publish-held',
  title: 'single-event publish rate while 10,000 polls are held on other tenants vs none held',
  async run(ctx) {
    const label = `publish 1 event/req, 64 conns, while ${POLL_TENANTS.toLocaleString('en-US')} polls are held (events/s)`;
    const wrk = ensureWrk();
    if (!wrk.ok) {
      return { rows: [{ label, better: 'higher', pollgate: null, baseline: null, skipped: 'wrk not available', notes: [wrk.reason] }] };
    }
    if (ctx.durationS * 2 > WAIT_S - 20) throw new Error(`--duration ${ctx.durationS} is too long for polls held ${WAIT_S} s`);
    const fixture = await consumerFixture(ctx);
    const tmp = makeTempDir('bench-publish-held');
    const bodiesFile = join(tmp, 'bodies.txt');
    writeFileSync(bodiesFile, `${Array.from({ length: TENANTS }, (_, i) => JSON.stringify(eventBody(i))).join('\n')}\n`);
    const server = await startPollgate({ template: fixture.template });
    const fleet = new PollFleet();
    const runs: Run[] = [];
    const problems: string[] = [];
    try {
      await fleet.init(server.port, 'pollgate', pollgateSpecs(fixture.perTenant));
      ctx.log(`publish-held: open-files limits: pollgate ${openFilesLimit(server.child.proc.pid)}, poll client ${fleet.nofile().join('/')}`);
      const load = async (name: string, held: boolean, durationS: number): Promise<Run> => {
        const before = await readHead(server);
        const m0 = await readMetrics(server);
        const cpu0 = cpuSeconds(server.child.proc.pid);
        const r = await runWrk({ url: server.url, path: '/v1/events', bodiesFile, auth: ADMIN_KEY, connections: CONNECTIONS, threads: THREADS, durationS });
        const cpu1 = cpuSeconds(server.child.proc.pid);
        await new Promise((res) => setTimeout(res, 300));
        const appended = (await readHead(server)) - before;
        const m1 = await readMetrics(server);
        const o = { name, label, bodies: [], eventsPerRequest: 1, connections: CONNECTIONS, threads: THREADS, warmupS: 2 };
        const check: LogCheck = { ...checkLog(name, r, appended, o), headBefore: before, commits: commitStats(m0, m1, r.durationS) };
        if (!check.passed) problems.push(`${name}: ${check.problem}`);
        const cpuPerEventUs = cpu0 === null || cpu1 === null ? Number.NaN : ((cpu1 - cpu0) * 1e6) / r.requests;
        return { ...r, held, cpuPerEventUs, check };
      };
      const hold = async () => {
        await fleet.arm(WAIT_S, 100);
        return waitForCount('pollgate: polls held', () => heldPolls(server), POLL_TENANTS, 60_000);
      };
      const release = async () => {
        const c = await fleet.check();
        if (c.early > 0 || c.pending !== POLL_TENANTS) {
          problems.push(`${c.early} held polls were answered during the run (${c.earlySample.join(' | ')})`);
        }
        await fleet.drop();
        await waitForCount('pollgate: polls released', () => heldPolls(server).then((n) => POLL_TENANTS - n), POLL_TENANTS, 30_000);
      };

      ctx.log('publish-held: warm-up 2 s, no polls held');
      await load('warm-up', false, 2);
      for (let i = 1; i <= ctx.runs; i++) {
        const order = i % 2 === 1 ? [false, true] : [true, false];
        for (const held of order) {
          let heldMs = 0;
          if (held) heldMs = await hold();
          // Let the arming (or the previous release: 10,000 aborted requests) settle.
          await new Promise((res) => setTimeout(res, SETTLE_MS));
          const r = await load(`run ${i} ${held ? 'held' : 'none'}`, held, ctx.durationS);
          if (held) await release();
          runs.push(r);
          ctx.log(
            `publish-held run ${i}/${ctx.runs}, ${held ? `${POLL_TENANTS} polls held (in ${heldMs} ms)` : 'no polls held'}: ` +
              `${Math.round(r.requestsPerS)} events/s, p99 ${r.latencyMs.p99.toFixed(1)} ms, ${r.cpuPerEventUs.toFixed(0)} µs CPU/event` +
              (r.check.passed ? '' : `; LOG CHECK FAILED: ${r.check.problem}`),
          );
        }
      }
    } finally {
      await fleet.close();
      await server.stop();
      removeTempDir(tmp);
    }
    const held = runs.filter((r) => r.held);
    const none = runs.filter((r) => !r.held);
    const p = spread(held.map((r) => r.requestsPerS));
    const b = spread(none.map((r) => r.requestsPerS));
    const errors = runs.reduce((n, r) => n + r.statusErrors + r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write + r.socketErrors.timeout, 0);
    const rows: Row[] = [
      {
        label,
        better: 'higher',
        pollgate: p,
        baseline: b,
        peer: 'none held',
        pairRatios: held.map((r, i) => r.requestsPerS / none[i]!.requestsPerS),
        target: `≥ ${TARGET}× none held`,
        met: p.median / b.median >= TARGET,
        failed: problems.length > 0,
        notes: [
          `${ctx.runs} runs of ${ctx.durationS} s per side on one server, alternating (none/held, held/none, …); same wrk load as publish (100 tenants t000…t099), the 10,000 polls on tenants w00000…w09999`,
          `server CPU per event (µs): held ${held.map((r) => r.cpuPerEventUs.toFixed(0)).join(', ')}; none ${none.map((r) => r.cpuPerEventUs.toFixed(0)).join(', ')}`,
          `wrk p99 (ms): held ${held.map((r) => r.latencyMs.p99.toFixed(1)).join(', ')}; none ${none.map((r) => r.latencyMs.p99.toFixed(1)).join(', ')}`,
          problems.length === 0
            ? 'log check passed on every run; no held poll was answered during a run'
            : `PROBLEMS: ${problems.join(' | ')}`,
          ...(errors > 0 ? [`${errors} non-2xx answers or socket errors`] : []),
        ],
      },
    ];
    return { rows, details: { runs } };
  },
};

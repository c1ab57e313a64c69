/**
 * A throughput duel: the same POST load from wrk against pollgate and the bare Hono baseline
 * (and, when asked, the plain node:http baseline), runs interleaved (pollgate, bare Hono,
 * plain node, pollgate, …) so every side shares the machine's noise, after one short
 * unmeasured warm-up each.
 *
 * Every pollgate run (warm-up too) is checked against the log: the events appended during
 * the run (head after − head before, from /metrics) must equal the 2xx answers × events per
 * request, plus at most one request per connection that was in flight when wrk stopped (wrk
 * closes those connections without reading the answer; the server has committed them or
 * will). Fewer events than 2xx answers means lost writes, and the row fails.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Row, ScenarioContext } from './scenario.ts';
import { cpuSeconds, makeTempDir, removeTempDir } from './proc.ts';
import { mainThreadProfile, renderProfile, summarizeProfile, type ProfileSummary } from './profile.ts';
import { ADMIN_KEY, readHead, readMetrics, startBaseline, startPollgate, type BaselineServer, type RunningServer } from './servers.ts';
import { ensureNchan, startNchan, type NchanServer } from './nchan.ts';
import { fmtSpread, spread } from './stats.ts';
import { ensureWrk, runWrk, type WrkResult } from './wrk.ts';

export interface DuelOptions {
  name: string;
  label: string;
  /** Request bodies, one JSON document each (no newlines); wrk cycles through them. */
  bodies: string[];
  eventsPerRequest: number;
  connections: number;
  threads: number;
  warmupS: number;
  /** The target for the events/s row: its words, and whether the medians meet it. */
  target?: { text: string; met(ratio: number, pollgateMedian: number): boolean };
  /**
   * Also load the plain node:http baseline (baseline/plain-node.ts) in the same rounds; its
   * rows: events/s, CPU per event and p99 against it, with these targets.
   */
  plainNode?: {
    target?: { text: string; met(ratio: number): boolean };
    p99Target?: { text: string; met(ratio: number): boolean };
  };
  /**
   * Also load nginx+nchan's publisher with these lines ("PATH<TAB>BODY", see post.lua) in the
   * same interleaved rounds, and report it in the notes (it keeps messages in memory only:
   * context, not a durability peer).
   */
  nchanLines?: string[];
}

export interface LogCheck {
  run: string;
  /** The log's head when the run started: how big the log already was. */
  headBefore: number;
  ok2xx: number;
  appended: number;
  /** appended − ok2xx × eventsPerRequest: requests in flight when wrk stopped, in events. */
  inFlightEvents: number;
  /**
   * From /metrics: the writer's mean jobs per commit, mean transaction time (BEGIN…COMMIT,
   * synchronous on the event loop) and the share of the run the loop spent inside them.
   */
  commits: { count: number; meanGroup: number; meanMs: number; loopShare: number } | null;
  passed: boolean;
  problem: string | null;
}

/** One wrk run and the server CPU it cost. */
export interface Measured extends WrkResult {
  /** Server CPU seconds (all threads) during the run; null without /proc. */
  serverCpuS: number | null;
}

export interface DuelResult {
  rows: Row[];
  details: {
    pollgate: Measured[];
    baseline: Measured[];
    plainNode: Measured[];
    nchan: Measured[];
    checks: LogCheck[];
    profile: ProfileSummary | null;
    baselineProfile: ProfileSummary | null;
  };
}

const SETTLE_MS = 300;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function skipped(o: DuelOptions, reason: string): DuelResult {
  return {
    rows: [{ label: o.label, better: 'higher', pollgate: null, baseline: null, skipped: 'wrk not available', notes: [`skipped: ${reason}`] }],
    details: { pollgate: [], baseline: [], plainNode: [], nchan: [], checks: [], profile: null, baselineProfile: null },
  };
}

export async function duel(ctx: ScenarioContext, o: DuelOptions): Promise<DuelResult> {
  const wrk = ensureWrk();
  if (!wrk.ok) return skipped(o, wrk.reason);

  const tmp = makeTempDir(`bench-${o.name}`);
  const bodiesFile = join(tmp, 'bodies.txt');
  const nchanFile = join(tmp, 'nchan-bodies.txt');
  writeFileSync(bodiesFile, `${o.bodies.join('\n')}\n`);

  const pollgate = await startPollgate({ profileDir: ctx.profileDir, profileName: `${o.name}-${Date.now()}` });
  let baseline: BaselineServer | null = null;
  let plain: BaselineServer | null = null;
  let nchan: NchanServer | null = null;
  let nchanReason = '';
  const checks: LogCheck[] = [];
  const pgRuns: Measured[] = [];
  const baseRuns: Measured[] = [];
  const plainRuns: Measured[] = [];
  const nchanRuns: Measured[] = [];
  let profile: ProfileSummary | null = null;
  try {
    baseline = await startBaseline({ profileDir: ctx.profileDir, profileName: `${o.name}-bare-hono-${Date.now()}` });
    if (o.plainNode) plain = await startBaseline({ kind: 'plain-node' });
    if (o.nchanLines) {
      const avail = ensureNchan();
      if (avail.ok) {
        try {
          nchan = await startNchan();
          writeFileSync(nchanFile, `${o.nchanLines.join('\n')}\n`);
        } catch (error) {
          nchanReason = (error as Error).message.split('\n')[0]!;
        }
      } else nchanReason = avail.reason;
    }
    const cpuOf = (server: RunningServer | NchanServer): number | null => {
      const pids = 'pids' in server ? server.pids() : [server.child.proc.pid];
      let sum = 0;
      for (const pid of pids) {
        const c = cpuSeconds(pid);
        if (c === null) return null;
        sum += c;
      }
      return sum;
    };
    const load = async (server: RunningServer | NchanServer, durationS: number): Promise<Measured> => {
      const cpu0 = cpuOf(server);
      const r = await runWrk({
        url: server.url,
        path: '/v1/events',
        bodiesFile: server === nchan ? nchanFile : bodiesFile,
        auth: server === pollgate ? ADMIN_KEY : undefined,
        connections: o.connections,
        threads: o.threads,
        durationS,
      });
      const cpu1 = cpuOf(server);
      return { ...r, serverCpuS: cpu0 === null || cpu1 === null ? null : cpu1 - cpu0 };
    };

    const checkedPollgateRun = async (run: string, durationS: number): Promise<Measured> => {
      const before = await readHead(pollgate);
      const m0 = await readMetrics(pollgate);
      const r = await load(pollgate, durationS);
      await sleep(SETTLE_MS); // let the commits of requests wrk abandoned finish
      const appended = (await readHead(pollgate)) - before;
      const m1 = await readMetrics(pollgate);
      checks.push({ ...checkLog(run, r, appended, o), headBefore: before, commits: commitStats(m0, m1, r.durationS) });
      return r;
    };
    const describe = (r: Measured) =>
      `${Math.round(r.requestsPerS * o.eventsPerRequest)} events/s, p99 ${r.latencyMs.p99.toFixed(1)} ms` +
      (r.serverCpuS === null ? '' : `, server CPU ${(r.serverCpuS / r.durationS).toFixed(2)} cores, ${cpuPerEvent(r, o).toFixed(1)} µs/event`) +
      (r.statusErrors ? `, ${r.statusErrors} non-2xx` : '');

    const commitsOf = () => {
      const c = checks[checks.length - 1]?.commits;
      const head = checks[checks.length - 1]?.headBefore ?? 0;
      return (
        `; log head at start ${head}` +
        (c ? `; ${c.count} commits, ${c.meanGroup.toFixed(1)} jobs/commit, ${c.meanMs.toFixed(2)} ms/transaction, loop in writer ${(100 * c.loopShare).toFixed(0)}% of the run` : '')
      );
    };
    ctx.log(`${o.name}: warm-up ${o.warmupS} s each`);
    await checkedPollgateRun('warm-up', o.warmupS);
    await load(baseline, o.warmupS);
    if (plain) await load(plain, o.warmupS);
    if (nchan) await load(nchan, o.warmupS);
    for (let i = 1; i <= ctx.runs; i++) {
      const p = await checkedPollgateRun(`run ${i}`, ctx.durationS);
      pgRuns.push(p);
      ctx.log(`${o.name}: pollgate  run ${i}/${ctx.runs}: ${describe(p)}${commitsOf()}`);
      const b = await load(baseline, ctx.durationS);
      baseRuns.push(b);
      ctx.log(`${o.name}: bare-hono run ${i}/${ctx.runs}: ${describe(b)}`);
      if (plain) {
        const n = await load(plain, ctx.durationS);
        plainRuns.push(n);
        ctx.log(`${o.name}: plain-node run ${i}/${ctx.runs}: ${describe(n)}`);
      }
      if (nchan) {
        const n = await load(nchan, ctx.durationS);
        nchanRuns.push(n);
        ctx.log(`${o.name}: nchan     run ${i}/${ctx.runs}: ${describe(n)}`);
      }
    }
  } finally {
    const code = await pollgate.stop();
    if (code !== 0) ctx.log(`${o.name}: pollgate exited with ${code} on SIGTERM (expected 0)`);
    await baseline?.stop();
    await plain?.stop();
    await nchan?.stop();
    removeTempDir(tmp);
  }
  const summarize = (server: { name: string; profileDir: string | null; startupMs: number } | null): ProfileSummary | null => {
    if (!server?.profileDir) return null;
    try {
      const summary = summarizeProfile(mainThreadProfile(server.profileDir), { skipFirstMs: server.startupMs });
      ctx.log(`${o.name}: ${server.name} ${renderProfile(summary)}`);
      return summary;
    } catch (error) {
      ctx.log(`${o.name}: could not read the ${server.name} profile in ${server.profileDir}: ${(error as Error).message}`);
      return null;
    }
  };
  profile = summarize(pollgate);
  const baselineProfile = summarize(baseline);

  const failedChecks = checks.filter((c) => !c.passed);
  const pairRatios = pgRuns.map((p, i) => p.requestsPerS / baseRuns[i]!.requestsPerS);
  const inFlight = checks.map((c) => c.inFlightEvents);
  const notes = [
    `${ctx.runs} interleaved runs of ${ctx.durationS} s per side, ${o.connections} connections, wrk -t${o.threads}`,
    failedChecks.length === 0
      ? `log check passed on all ${checks.length} pollgate runs: events appended = 2xx × ${o.eventsPerRequest} + in-flight at wrk stop (${inFlight.join(', ')} events)`
      : `LOG CHECK FAILED: ${failedChecks.map((c) => `${c.run}: ${c.problem}`).join('; ')}`,
  ];
  const commitRuns = checks.slice(1).flatMap((c) => (c.commits ? [c.commits] : []));
  if (commitRuns.length > 0) {
    notes.push(
      `writer (from /metrics): ${commitRuns.map((c) => c.meanGroup.toFixed(1)).join(', ')} jobs per commit; ` +
        `${commitRuns.map((c) => c.meanMs.toFixed(2)).join(', ')} ms per transaction (BEGIN…COMMIT, the event loop blocked); ` +
        `the loop spent ${commitRuns.map((c) => `${(100 * c.loopShare).toFixed(0)}%`).join(', ')} of each run inside the writer`,
    );
  }
  const errors = (rs: WrkResult[]) => rs.reduce((n, r) => n + r.statusErrors + r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write + r.socketErrors.timeout, 0);
  if (errors(pgRuns) > 0) notes.push(`pollgate: ${errors(pgRuns)} non-2xx answers or socket errors`);
  if (errors(baseRuns) > 0) notes.push(`baseline: ${errors(baseRuns)} non-2xx answers or socket errors`);
  if (errors(plainRuns) > 0) notes.push(`plain node:http baseline: ${errors(plainRuns)} non-2xx answers or socket errors`);
  if (o.nchanLines) {
    if (nchanRuns.length > 0) {
      const e = spread(nchanRuns.map((r) => r.requestsPerS * o.eventsPerRequest));
      const c = spread(nchanRuns.map((r) => cpuPerEvent(r, o)));
      const pgMedian = spread(pgRuns.map((r) => r.requestsPerS * o.eventsPerRequest)).median;
      notes.push(
        `nchan (nginx 1 worker, same wrk load to /pub?id=<tenant>, messages kept in memory only, NOT durable: context, not a peer): ` +
          `${fmtSpread(e)} events/s, ${fmtSpread(c)} µs server CPU per event (master+worker), p99 ${fmtSpread(spread(nchanRuns.map((r) => r.latencyMs.p99)))} ms; ` +
          `pollgate ÷ nchan ${(pgMedian / e.median).toFixed(2)}×` +
          (errors(nchanRuns) > 0 ? `; ${errors(nchanRuns)} non-2xx answers or socket errors` : ''),
      );
    } else notes.push(`nchan not available: ${nchanReason}`);
  }

  const perS = (rs: Measured[]) => spread(rs.map((r) => r.requestsPerS * o.eventsPerRequest));
  const p99 = (rs: Measured[]) => spread(rs.map((r) => r.latencyMs.p99));
  const cpu = (rs: Measured[]) => spread(rs.map((r) => cpuPerEvent(r, o)));
  const haveCpu = [...pgRuns, ...baseRuns, ...plainRuns].every((r) => r.serverCpuS !== null);
  const plainRows: Row[] =
    plainRuns.length === 0
      ? []
      : [
          {
            label: `${o.label} (events/s)`,
            better: 'higher',
            pollgate: perS(pgRuns),
            baseline: perS(plainRuns),
            pairRatios: pgRuns.map((p, i) => p.requestsPerS / plainRuns[i]!.requestsPerS),
            peer: 'plain node:http',
            notes: ['plain node:http baseline (bench/baseline/plain-node.ts): read, JSON.parse, check the shape, push to an in-memory array, answer the envelope; no auth, storage or log'],
            ...(o.plainNode?.target
              ? { target: o.plainNode.target.text, met: o.plainNode.target.met(perS(pgRuns).median / perS(plainRuns).median) }
              : {}),
          },
          ...(haveCpu
            ? [
                {
                  label: `${o.label}: server CPU per event (µs)`,
                  better: 'lower' as const,
                  pollgate: cpu(pgRuns),
                  baseline: cpu(plainRuns),
                  pairRatios: pgRuns.map((p, i) => cpuPerEvent(p, o) / cpuPerEvent(plainRuns[i]!, o)),
                  peer: 'plain node:http',
                  notes: [],
                },
              ]
            : []),
          {
            label: `${o.label}: request p99 (ms)`,
            better: 'lower',
            pollgate: p99(pgRuns),
            baseline: p99(plainRuns),
            pairRatios: pgRuns.map((p, i) => p.latencyMs.p99 / plainRuns[i]!.latencyMs.p99),
            peer: 'plain node:http',
            notes: [],
            ...(o.plainNode?.p99Target
              ? { target: o.plainNode.p99Target.text, met: o.plainNode.p99Target.met(p99(pgRuns).median / p99(plainRuns).median) }
              : {}),
          },
        ];
  const rows: Row[] = [
    ...plainRows,
    {
      label: `${o.label} (events/s)`,
      better: 'higher',
      pollgate: perS(pgRuns),
      baseline: perS(baseRuns),
      pairRatios,
      notes,
      peer: 'bare Hono',
      ...(o.target
        ? {
            target: o.target.text,
            met: o.target.met(
              spread(pgRuns.map((r) => r.requestsPerS)).median / spread(baseRuns.map((r) => r.requestsPerS)).median,
              spread(pgRuns.map((r) => r.requestsPerS * o.eventsPerRequest)).median,
            ),
          }
        : {}),
      failed: failedChecks.length > 0,
    },
    ...(haveCpu
      ? [
          {
            label: `${o.label}: server CPU per event (µs)`,
            better: 'lower' as const,
            pollgate: cpu(pgRuns),
            baseline: cpu(baseRuns),
            pairRatios: pgRuns.map((p, i) => cpuPerEvent(p, o) / cpuPerEvent(baseRuns[i]!, o)),
            peer: 'bare Hono',
            notes: ['server process user+system CPU (all threads, /proc) during the run ÷ events answered; independent of how the cores were shared'],
          },
        ]
      : []),
    {
      label: `${o.label}: request p99 (ms)`,
      better: 'lower',
      pollgate: p99(pgRuns),
      baseline: p99(baseRuns),
      pairRatios: pgRuns.map((p, i) => p.latencyMs.p99 / baseRuns[i]!.latencyMs.p99),
      peer: 'bare Hono',
      notes: ['wrk latency percentiles, per run'],
    },
  ];
  return { rows, details: { pollgate: pgRuns, baseline: baseRuns, plainNode: plainRuns, nchan: nchanRuns, checks, profile, baselineProfile } };
}

function cpuPerEvent(r: Measured, o: DuelOptions): number {
  return ((r.serverCpuS ?? Number.NaN) * 1e6) / (r.requests * o.eventsPerRequest);
}

export function commitStats(m0: Map<string, number> | null, m1: Map<string, number> | null, durationS: number): LogCheck['commits'] {
  const d = (k: string) => (m1?.get(k) ?? Number.NaN) - (m0?.get(k) ?? Number.NaN);
  const count = d('pollgate_commit_group_size_count');
  if (!m0 || !m1 || !(count > 0)) return null;
  const seconds = d('pollgate_commit_duration_seconds_sum');
  return {
    count,
    meanGroup: d('pollgate_commit_group_size_sum') / count,
    meanMs: (1000 * seconds) / d('pollgate_commit_duration_seconds_count'),
    loopShare: seconds / durationS,
  };
}

export function checkLog(
  run: string,
  r: WrkResult,
  appended: number,
  o: Pick<DuelOptions, 'eventsPerRequest' | 'connections'>,
): Omit<LogCheck, 'commits' | 'headBefore'> {
  // pollgate answers 201 for a new event and 4xx/5xx for failures; wrk counts >399 as errors.
  const ok2xx = r.requests - r.statusErrors;
  const inFlightEvents = appended - ok2xx * o.eventsPerRequest;
  let problem: string | null = null;
  if (inFlightEvents < 0) problem = `${-inFlightEvents} events missing: ${ok2xx} 2xx × ${o.eventsPerRequest} but only ${appended} appended`;
  else if (inFlightEvents > o.connections * o.eventsPerRequest) {
    problem = `${inFlightEvents} more events than 2xx answers, more than ${o.connections} in-flight requests can explain`;
  } else if (inFlightEvents % o.eventsPerRequest !== 0) problem = `a partial batch: ${inFlightEvents} extra events`;
  return { run, ok2xx, appended, inFlightEvents, passed: problem === null, problem };
}

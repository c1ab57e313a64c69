/**
 * The soak's time series: one sample every few seconds (what the server process looks like from
 * /proc, what its /metrics says, what the publisher, the poll fleet and the receivers counted
 * over the interval), folded into one table row per ~30 s, and the summary that says whether
 * the curves are flat: first vs last and the least-squares slope over the steady part.
 */
import { fmt } from './stats.ts';

export interface SoakSample {
  /** Seconds since the load started, at the end of the interval. */
  t: number;
  intervalS: number;
  rssMiB: number;
  fds: number;
  /** Of the fds, sockets (held polls, publishers, webhook connections, the listener). */
  sockets: number;
  heapUsedMiB: number;
  /** Server CPU (user + system, all threads) over the interval, % of one core. */
  cpuPct: number;
  /** CPU of the load generators (bench process, poll fleet, receivers), % of one core. */
  clientCpuPct: number;
  loadavg1: number;
  /** Event-loop delay over the interval (prom-client's histogram, reset at each scrape), ms. */
  eldP99Ms: number;
  eldMaxMs: number;
  /** The same for the bench process's own (lightly loaded) loop: the machine's share of the delay. */
  benchEldP99Ms: number;
  benchEldMaxMs: number;
  /** Share of the interval the server spent in GC pauses / in the writer's transactions (both block its loop), %. */
  gcPct: number;
  writerPct: number;
  /** How long the /metrics scrape took (it computes every consumer's lag), and a GET /healthz just before it. */
  scrapeMs: number;
  /** Scrapes answered 503 (database unavailable) in the interval before one answered. */
  scrape503: number;
  healthzMs: number;
  held: number;
  /** Polls the fleet has written and not yet had answered (held, or being set up or answered). */
  pollsOpen: number;
  publishedEvents: number;
  publishP99Ms: number;
  publishRetries: number;
  shed: number;
  pollEvents: number;
  pollRepeats: number;
  pollNon200: number;
  pollP99Ms: number;
  pollTimeouts: number;
  /** Polls that ended on the server in the interval (all outcomes): the poll requests served. */
  polls: number;
  pushOk: number;
  pushFailed: number;
  pushP99Ms: number;
  /** Requests to the hanging receiver still open at the end of the interval. */
  hungOpen: number;
  /** Connections open from pollgate to the receivers at the end of the interval. */
  webhookConnections: number;
  /** Consumers with unacked events, and the largest lag among those that should keep up. */
  lagging: number;
  healthyLagMax: number;
}

export interface SeriesRow {
  t: number;
  rssMiB: number;
  fds: number;
  heapUsedMiB: number;
  heldMin: number;
  publishPerS: number;
  pollsPerS: number;
  pollPerS: number;
  pushOkPerS: number;
  pushFailedPerS: number;
  pollP99Ms: number;
  pushP99Ms: number;
  eldP99Ms: number;
  eldMaxMs: number;
  benchEldP99Ms: number;
  healthzMs: number;
  gcPct: number;
  writerPct: number;
  lagging: number;
  healthyLagMax: number;
  cpuPct: number;
  clientCpuPct: number;
  loadavg1: number;
}

/** The largest value that is a measurement (NaN: none in the interval); NaN when there is none. */
const max = (xs: number[]) => xs.reduce((a, b) => (Number.isNaN(b) ? a : Number.isNaN(a) ? b : Math.max(a, b)), Number.NaN);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** Folds consecutive samples into rows of about rowS seconds (the last row may be shorter). */
export function foldRows(samples: SoakSample[], rowS: number): SeriesRow[] {
  const rows: SeriesRow[] = [];
  let group: SoakSample[] = [];
  const flush = () => {
    if (group.length === 0) return;
    const last = group.at(-1)!;
    const seconds = sum(group.map((s) => s.intervalS));
    rows.push({
      t: last.t,
      rssMiB: last.rssMiB,
      fds: last.fds,
      heapUsedMiB: last.heapUsedMiB,
      heldMin: Math.min(...group.map((s) => s.held)),
      publishPerS: sum(group.map((s) => s.publishedEvents)) / seconds,
      pollsPerS: sum(group.map((s) => s.polls)) / seconds,
      pollPerS: sum(group.map((s) => s.pollEvents)) / seconds,
      pushOkPerS: sum(group.map((s) => s.pushOk)) / seconds,
      pushFailedPerS: sum(group.map((s) => s.pushFailed)) / seconds,
      pollP99Ms: max(group.map((s) => s.pollP99Ms)),
      pushP99Ms: max(group.map((s) => s.pushP99Ms)),
      eldP99Ms: max(group.map((s) => s.eldP99Ms)),
      eldMaxMs: max(group.map((s) => s.eldMaxMs)),
      benchEldP99Ms: max(group.map((s) => s.benchEldP99Ms)),
      healthzMs: max(group.map((s) => s.healthzMs)),
      gcPct: sum(group.map((s) => s.gcPct * s.intervalS)) / seconds,
      writerPct: sum(group.map((s) => s.writerPct * s.intervalS)) / seconds,
      lagging: last.lagging,
      healthyLagMax: max(group.map((s) => s.healthyLagMax)),
      cpuPct: sum(group.map((s) => s.cpuPct * s.intervalS)) / seconds,
      clientCpuPct: sum(group.map((s) => s.clientCpuPct * s.intervalS)) / seconds,
      loadavg1: last.loadavg1,
    });
    group = [];
  };
  let start = 0;
  for (const s of samples) {
    group.push(s);
    if (s.t - start >= rowS - 0.5) {
      flush();
      start = s.t;
    }
  }
  flush();
  return rows;
}

export function renderSeries(rows: SeriesRow[]): string {
  const header = [
    't (s)',
    'RSS MiB',
    'heap MiB',
    'fds',
    'held (min)',
    'publish ev/s',
    'polls/s',
    'poll ev/s',
    'push ok/s',
    'push failed/s',
    'poll p99 ms',
    'push p99 ms',
    'ELD p99 ms',
    'ELD max ms',
    'bench ELD p99 ms',
    '/healthz ms',
    'GC %',
    'writer %',
    'lagging',
    'healthy lag max',
    'CPU %',
    'load gen CPU %',
    'load',
  ];
  const body = rows.map((r) => [
    String(Math.round(r.t)),
    fmt(r.rssMiB),
    fmt(r.heapUsedMiB),
    String(r.fds),
    String(r.heldMin),
    fmt(r.publishPerS),
    fmt(r.pollsPerS),
    fmt(r.pollPerS),
    fmt(r.pushOkPerS),
    fmt(r.pushFailedPerS),
    fmt(r.pollP99Ms),
    fmt(r.pushP99Ms),
    fmt(r.eldP99Ms),
    fmt(r.eldMaxMs),
    fmt(r.benchEldP99Ms),
    fmt(r.healthzMs),
    fmt(r.gcPct),
    fmt(r.writerPct),
    String(r.lagging),
    String(r.healthyLagMax),
    fmt(r.cpuPct),
    fmt(r.clientCpuPct),
    r.loadavg1.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padStart(widths[i]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => `${'-'.repeat(w + 1)}:`).join('|')}|`, ...body.map(line)].join('\n');
}

export interface Trend {
  first: number;
  last: number;
  min: number;
  max: number;
  /** Least-squares slope, per minute. */
  perMinute: number;
  /** The fitted growth over the span (slope × span). */
  growth: number;
  spanS: number;
}

/** First, last and the fitted slope of one value over the samples given (the steady part). */
export function trend(samples: SoakSample[], value: (s: SoakSample) => number): Trend {
  const xs = samples.map((s) => s.t);
  const ys = samples.map(value);
  const n = xs.length;
  const mx = sum(xs) / n;
  const my = sum(ys) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  const slopePerS = den > 0 ? num / den : 0;
  const spanS = n > 1 ? xs[n - 1]! - xs[0]! : 0;
  return {
    first: ys[0]!,
    last: ys[n - 1]!,
    min: Math.min(...ys),
    max: Math.max(...ys),
    perMinute: slopePerS * 60,
    growth: slopePerS * spanS,
    spanS,
  };
}

/**
 * The lowest JS heap use in each window of windowS seconds: V8 collects the old generation only
 * now and then, so single samples ride a sawtooth; its low points follow what is really alive.
 * A leak shows as low points that climb, whatever the sawtooth does.
 */
export function heapLows(samples: SoakSample[], windowS: number): Array<{ t: number; mib: number }> {
  const out: Array<{ t: number; mib: number }> = [];
  if (samples.length === 0) return out;
  const start = samples[0]!.t;
  for (const s of samples) {
    const w = Math.floor((s.t - start) / windowS);
    const cur = out[w];
    if (!cur) out[w] = { t: s.t, mib: s.heapUsedMiB };
    else if (s.heapUsedMiB < cur.mib) out[w] = { t: s.t, mib: s.heapUsedMiB };
  }
  return out.filter(Boolean);
}

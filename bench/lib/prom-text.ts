/**
 * Reads pollgate's /metrics (Prometheus text format) with its labels, which readMetrics in
 * servers.ts leaves out: the soak needs the labelled counters (publish and poll outcomes,
 * delivery outcomes) and the per-consumer lag series.
 */
import { ADMIN_KEY, type RunningServer } from './servers.ts';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export class Scrape {
  constructor(
    readonly samples: Sample[],
    /** How long the scrape took, request to last byte (the server computes every lag for it). */
    readonly ms: number,
    /** 503 answers (database unavailable) waited out before this one. */
    readonly unavailable = 0,
  ) {}

  /** The sum of the samples named `name` whose labels include `where` (NaN when there is none). */
  get(name: string, where: Record<string, string> = {}): number {
    let sum = 0;
    let found = false;
    for (const s of this.samples) {
      if (s.name !== name) continue;
      if (Object.entries(where).some(([k, v]) => s.labels[k] !== v)) continue;
      sum += s.value;
      found = true;
    }
    return found ? sum : Number.NaN;
  }

  /** Every sample named `name`. */
  all(name: string): Sample[] {
    return this.samples.filter((s) => s.name === name);
  }
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([-+0-9.eE]+|NaN|[+-]Inf)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/**
 * GET /metrics with the admin key. A 503 (the database busy or away) is waited out as the
 * contract says, up to timeoutMs; `ms` is the time of the scrape that answered 200, and
 * `unavailable` counts the 503s before it. Anything else throws.
 */
export async function scrape(server: RunningServer, timeoutMs = 60_000): Promise<Scrape> {
  const deadline = performance.now() + timeoutMs;
  for (let unavailable = 0; ; unavailable++) {
    const t0 = performance.now();
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    const ms = performance.now() - t0;
    if (res.status === 200) return new Scrape(parsePrometheusText(text), ms, unavailable);
    if (res.status !== 503 || performance.now() > deadline) throw new Error(`/metrics answered ${res.status}: ${text.slice(0, 200)}`);
    await new Promise((r) => setTimeout(r, 1000 * Math.min(5, Number(res.headers.get('retry-after')) || 1)));
  }
}

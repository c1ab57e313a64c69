/**
 * drain: one consumer catching up on a backlog, the poll path's bulk throughput.
 *
 * The log is prefilled with 300,000 events of one tenant ("drain", ~110-byte events like the
 * publish bench's) through the batch path. One consumer per run, created at "earliest", then
 * drains it with the loop a real catching-up consumer runs, over one keep-alive connection:
 *   GET /v1/events?limit=1000&wait=0[&ack=<cursor of the previous page>]
 * until a page comes back with no events (so the last page is acked too). Timed from the
 * first request written to the last answer received; events/s = events received ÷ that.
 * Checks: every event arrives once, in order (each page's cursor is past the previous one,
 * 1000 events per page but the last), and the consumer's committed cursor ends at the head.
 *
 * Baseline (the ceiling of the HTTP stack): the bare Hono server answers GET /v1/events with
 * a stored copy of one of pollgate's own 1000-event pages, byte for byte, doing nothing else;
 * the same client loop sends the same number of requests. Runs interleaved, ≥3 each.
 *
 * The client runs in the bench process (not the server's); it reads each page's event count
 * and cursor with string scans rather than JSON.parse, so it costs the same for both sides.
 */
import { rawRequest, RawConnection, monoMs } from './lib/raw-http.ts';
import { createConsumers } from './lib/consumers.ts';
import { prefill } from './lib/prefill.ts';
import type { Row, Scenario } from './lib/scenario.ts';
import { readHead, startBaseline, startPollgate, type BaselineServer, type PollgateServer } from './lib/servers.ts';
import { mainThreadProfile, renderProfile, summarizeProfile } from './lib/profile.ts';
import { spread } from './lib/stats.ts';
import { eventBody } from './publish.ts';

const BACKLOG = 300_000;
const LIMIT = 1000;
const TENANT = 'drain';
const TARGET = 150_000;

interface DrainRun {
  events: number;
  requests: number;
  ms: number;
  eventsPerS: number;
  bytes: number;
  problems: string[];
}

/** Events in a pollgate page, counted by the envelope's opening (ids never contain quotes). */
function countEvents(body: string): number {
  let n = 0;
  for (let i = body.indexOf('{"id":"'); i >= 0; i = body.indexOf('{"id":"', i + 7)) n++;
  return n;
}

const tail = (body: string) => /"cursor":"(t\d{16})","more":(true|false)\}$/.exec(body);

/**
 * Loops GET /v1/events?limit=1000&wait=0&ack=<prev> until a page has no events (or, for the
 * baseline, `requests` times). Answers the timing and any problem seen.
 */
export async function drainLoop(port: number, key: string | undefined, opts: { requests?: number }): Promise<DrainRun> {
  const conn = new RawConnection(port);
  await conn.connect();
  const problems: string[] = [];
  let cursor: string | null = null;
  let events = 0;
  let requests = 0;
  let bytes = 0;
  const t0 = monoMs();
  let tEnd = t0;
  try {
    for (;;) {
      const ack: string = cursor && key ? `&ack=${cursor}` : '';
      const r = await conn.request(rawRequest('GET', `/v1/events?limit=${LIMIT}&wait=0${ack}`, key ? { auth: key } : {}));
      requests += 1;
      tEnd = r.at;
      bytes += r.body.length;
      if (r.status !== 200) {
        problems.push(`request ${requests} answered ${r.status}: ${r.body.slice(0, 200)}`);
        break;
      }
      const n = countEvents(r.body);
      const t = tail(r.body);
      if (!t) {
        problems.push(`request ${requests}: no cursor at the end of the page`);
        break;
      }
      events += n;
      if (opts.requests !== undefined) {
        if (requests >= opts.requests) break;
        continue;
      }
      if (n === 0) break;
      if (cursor !== null && t[1]! <= cursor) problems.push(`page ${requests}: cursor ${t[1]} not past ${cursor}`);
      if (n !== LIMIT && t[2] === 'true') problems.push(`page ${requests}: ${n} events but more=true`);
      cursor = t[1]!;
    }
  } finally {
    conn.close();
  }
  const ms = tEnd - t0;
  return { events, requests, ms, eventsPerS: (events / ms) * 1000, bytes, problems };
}

export const scenario: Scenario = {
  name: 'drain',
  title: `backlog drain: one consumer, limit=${LIMIT} with ack= in the poll, ${BACKLOG.toLocaleString('en-US')} events`,
  async run(ctx) {
    const server: PollgateServer = await startPollgate({ profileDir: ctx.profileDir, profileName: `drain-${Date.now()}` });
    let baseline: BaselineServer | null = null;
    const pg: DrainRun[] = [];
    const base: DrainRun[] = [];
    const problems: string[] = [];
    let prefillNote = '';
    let pageBytes = 0;
    try {
      baseline = await startBaseline();
      const p = await prefill(server, BACKLOG, (i) => ({ ...eventBody(i), tenant: TENANT }));
      prefillNote = `prefill: ${BACKLOG} events in ${(p.ms / 1000).toFixed(1)} s (${Math.round(p.eventsPerS)} events/s through batch publish)`;
      ctx.log(`drain: ${prefillNote}`);
      const head = await readHead(server);
      const consumers = await createConsumers(server, Array.from({ length: ctx.runs + 1 }, () => TENANT), { start: 'earliest' });

      // The baseline's page: pollgate's first page, byte for byte (read without acking).
      const first = await fetch(`${server.url}/v1/events?limit=${LIMIT}&wait=0`, { headers: { authorization: `Bearer ${consumers[0]!.key}` } });
      const page = await first.text();
      if (countEvents(page) !== LIMIT) throw new Error(`the first page has ${countEvents(page)} events, want ${LIMIT}`);
      pageBytes = Buffer.byteLength(page);
      const put = await fetch(`${baseline.url}/bench/page`, { method: 'PUT', body: page });
      await put.text();
      const requestsPerDrain = BACKLOG / LIMIT + 1;

      // Warm-up: consumer 0 drains too, unmeasured; the baseline one loop.
      await drainLoop(server.port, consumers[0]!.key, {});
      await drainLoop(baseline.port, undefined, { requests: requestsPerDrain });
      for (let run = 1; run <= ctx.runs; run++) {
        const c = consumers[run]!;
        const r = await drainLoop(server.port, c.key, {});
        // The committed cursor must be the head: everything drained was acked.
        const me = await fetch(`${server.url}/v1/consumer`, { headers: { authorization: `Bearer ${c.key}` } });
        const view = (await me.json()) as { cursor: string };
        if (Number(view.cursor.slice(1)) !== head) r.problems.push(`committed cursor ${view.cursor} after the drain, head is ${head}`);
        if (r.events !== BACKLOG) r.problems.push(`${r.events} events received, ${BACKLOG} in the backlog`);
        pg.push(r);
        problems.push(...r.problems.map((p) => `run ${run}: ${p}`));
        ctx.log(`drain run ${run}: pollgate ${r.events} events in ${r.requests} requests, ${r.ms.toFixed(0)} ms → ${Math.round(r.eventsPerS)} events/s${r.problems.length ? `; PROBLEM ${r.problems.join('; ')}` : ''}`);
        const b = await drainLoop(baseline.port, undefined, { requests: requestsPerDrain });
        // Same count as pollgate's: 300 full pages, the 301st request stands for the final ack.
        b.events = BACKLOG;
        b.eventsPerS = (BACKLOG / b.ms) * 1000;
        base.push(b);
        ctx.log(`drain run ${run}: bare Hono ${b.events} events in ${b.requests} requests, ${b.ms.toFixed(0)} ms → ${Math.round(b.eventsPerS)} events/s`);
      }
    } finally {
      await server.stop();
      await baseline?.stop();
    }
    let profile: unknown;
    if (server.profileDir) {
      try {
        profile = summarizeProfile(mainThreadProfile(server.profileDir), { skipFirstMs: server.startupMs });
        ctx.log(`drain: pollgate ${renderProfile(profile as ReturnType<typeof summarizeProfile>)}`);
      } catch (error) {
        ctx.log(`drain: could not read the profile in ${server.profileDir}: ${(error as Error).message}`);
      }
    }
    const p = spread(pg.map((r) => r.eventsPerS));
    const row: Row = {
      label: `backlog drain, 1 consumer, limit=${LIMIT} + ack= in the poll, ${BACKLOG / 1000}k events (events/s)`,
      better: 'higher',
      pollgate: p,
      baseline: spread(base.map((r) => r.eventsPerS)),
      peer: 'bare Hono, stored page',
      pairRatios: pg.map((r, i) => r.eventsPerS / base[i]!.eventsPerS),
      target: `≥ ${TARGET / 1000}k events/s`,
      met: p.median >= TARGET,
      failed: problems.length > 0,
      notes: [
        prefillNote,
        `${pg.length} interleaved runs, a fresh consumer at "earliest" each; ${BACKLOG / LIMIT + 1} requests per drain (the last acks the last page and gets none); pages of ${Math.round(pageBytes / 1024)} KiB`,
        `drain time (ms): pollgate ${pg.map((r) => r.ms.toFixed(0)).join(', ')}; baseline ${base.map((r) => r.ms.toFixed(0)).join(', ')}`,
        problems.length === 0 ? 'every event received once, in order; the committed cursor ended at the head' : `PROBLEMS: ${problems.join(' | ')}`,
      ],
    };
    return { rows: [row], details: { pollgate: pg, baseline: base, ...(profile ? { profile } : {}) } };
  },
};

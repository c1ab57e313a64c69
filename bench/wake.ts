/**
 * wake: publish → wake latency of held long-polls, pollgate against nginx + nchan on the same
 * workload, rounds interleaved (pollgate round, nchan round, …).
 *
 * Variants:
 * - "1,000 tenants, single-event publishes" (issue 13's scenario): 1,000 consumers, one per
 *   tenant (w00000…w00999) / 1,000 nchan subscribers on as many channels (same names); one
 *   message per tenant/channel per round, each in its own publish request on BOTH sides:
 *   1,000 POSTs pipelined over the same 10 keep-alive connections. Target: p99 ≤ 2× nchan's.
 * - "1,000 tenants": the same polls, pollgate publishing the 1,000 events as one batch.
 * - "10,000 tenants": the same with 10,000.
 * - "fan-out": 1,000 consumers of one tenant / 1,000 subscribers of one channel; one message.
 *
 * How each side publishes in the other variants (the natural way its API allows): pollgate
 * takes arrays of up to 1,000 events, so one request per 1,000 tenants (10 requests on 10 connections for 10,000);
 * nchan takes one message per channel per request, so 1,000 (10,000) POSTs pipelined over 10
 * keep-alive connections. Fan-out is one single-message publish on both.
 *
 * Latency of a poll = its answer's last byte arriving − the moment the publish request that
 * carries its message was written to the socket ("from the publish request being sent", the
 * same for both). All times come from CLOCK_MONOTONIC in the client process(es). "all
 * answered" = last answer − first publish request written.
 *
 * The client is bench/lib/poll-client.ts, its own process, one raw socket per poll, the same
 * code for both servers. Before each publish: the server reports every poll held (pollgate's
 * pollgate_polls_held, nchan's stub status "subscribers") and the client has no answer yet.
 * Every answer must be a 200 with exactly the one message of this round for its tenant or
 * channel. Re-arming: pollgate polls ack= the previous cursor (one ack commit each, as a real
 * consumer does); nchan polls send If-Modified-Since / If-None-Match of the previous message.
 */
import { consumerFixture, FANOUT_TENANT, heldPolls, POLL_TENANTS, pollTenant, waitForCount, type Consumer } from './lib/consumers.ts';
import { ensureNchan, nchanPublish, startNchan, type NchanServer } from './lib/nchan.ts';
import type { FireResult } from './lib/poll-fleet.ts';
import { PollFleet } from './lib/poll-fleet.ts';
import type { PollSpec } from './lib/poll-client.ts';
import { openFilesLimit } from './lib/proc.ts';
import { mainThreadProfile, renderProfile, summarizeProfile } from './lib/profile.ts';
import { rawRequest } from './lib/raw-http.ts';
import type { Row, Scenario, ScenarioContext } from './lib/scenario.ts';
import { ADMIN_KEY, startPollgate, type PollgateServer } from './lib/servers.ts';
import { percentile, spread } from './lib/stats.ts';

const WAIT_S = 60;
const HELD_TIMEOUT_MS = 60_000;
const FIRE_TIMEOUT_MS = 30_000;
const NCHAN_PUBLISH_CONNS = 10;

export interface RoundStats {
  p50: number;
  p99: number;
  max: number;
  /** Last answer − first publish request written. */
  all: number;
  /** Last publish answer − first publish request written. */
  publishMs: number;
}

/** One side of the duel: a server, its client fleet, how it publishes and counts held polls. */
export interface Side {
  name: 'pollgate' | 'nchan';
  fleet: PollFleet;
  held(): Promise<number>;
  /** Raw publish requests for this round and, per poll, which request carries its message. */
  publish(round: number, polls: number): { requests: string[]; conns: number; requestOf: (poll: number) => number };
}

export const message = (c: string, round: number) => ({ c, r: round });

export function roundStats(r: FireResult, requestOf: (poll: number) => number): { stats: RoundStats; latencies: number[] } {
  const latencies = r.answerAt.flatMap((at, i) => (at < 0 ? [] : [at - r.sentAt[requestOf(i)]!]));
  const first = Math.min(...r.sentAt);
  return {
    latencies,
    stats: {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: Math.max(...latencies),
      all: Math.max(...r.answerAt) - first,
      publishMs: Math.max(...r.at) - first,
    },
  };
}

/** One round on one side; returns its stats and any problem found. */
export async function runRound(side: Side, polls: number, round: number): Promise<{ stats: RoundStats; latencies: number[]; heldMs: number; problems: string[] }> {
  await side.fleet.arm(WAIT_S, 100, polls);
  const heldMs = await waitForCount(`${side.name}: polls held`, () => side.held(), polls, HELD_TIMEOUT_MS);
  const check = await side.fleet.check();
  if (check.early > 0 || check.pending !== polls) {
    throw new Error(`${side.name}: ${check.early} polls answered before the publish, ${check.pending}/${polls} pending (${check.earlySample.join(' | ')})`);
  }
  const { requests, conns, requestOf } = side.publish(round, polls);
  const r = await side.fleet.fire(round, requests, conns, FIRE_TIMEOUT_MS);
  const problems: string[] = [];
  const badPublish = r.status.filter((s) => s < 200 || s > 299).length;
  if (badPublish > 0) problems.push(`${badPublish} of ${requests.length} publishes failed (${r.sample})`);
  if (!r.complete || r.missing > 0) problems.push(`${r.missing} polls unanswered after ${FIRE_TIMEOUT_MS} ms`);
  if (r.bad > 0) problems.push(`${r.bad} wrong answers (${r.badSample.join(' | ')}); statuses ${JSON.stringify(r.statuses)}`);
  return { ...roundStats(r, requestOf), heldMs, problems };
}

interface VariantResult {
  name: string;
  rounds: Record<'pollgate' | 'nchan', RoundStats[]>;
  pooled: Record<'pollgate' | 'nchan', number[]>;
  problems: string[];
}

async function runVariant(
  ctx: ScenarioContext,
  name: string,
  sides: Side[],
  polls: number,
  rounds: number,
): Promise<VariantResult> {
  const out: VariantResult = { name, rounds: { pollgate: [], nchan: [] }, pooled: { pollgate: [], nchan: [] }, problems: [] };
  for (let round = 0; round <= rounds; round++) {
    const label = round === 0 ? 'warm-up' : `round ${round}/${rounds}`;
    for (const side of sides) {
      const r = await runRound(side, polls, round);
      ctx.log(
        `wake ${name} ${side.name} ${label}: held in ${r.heldMs} ms; p50 ${r.stats.p50.toFixed(1)} ms, p99 ${r.stats.p99.toFixed(1)} ms, ` +
          `all answered ${r.stats.all.toFixed(1)} ms; publish answered in ${r.stats.publishMs.toFixed(1)} ms` +
          (r.problems.length ? `; PROBLEM ${r.problems.join('; ')}` : ''),
      );
      for (const p of r.problems) out.problems.push(`${side.name} ${label}: ${p}`);
      if (round === 0) continue;
      out.rounds[side.name].push(r.stats);
      out.pooled[side.name].push(...r.latencies);
    }
  }
  return out;
}

/** How pollgate's side publishes a round: one batch per 1,000 tenants, one request per event, or the fan-out's one event. */
export type PublishShape = 'batch' | 'single' | 'fanout';

export function pollgateSide(server: PollgateServer, fleet: PollFleet, shape: PublishShape | boolean, tenantOf: (i: number) => string = pollTenant): Side {
  const fanout = shape === true || shape === 'fanout';
  return {
    name: 'pollgate',
    fleet,
    held: () => heldPolls(server),
    publish(round, polls) {
      if (shape === 'single') {
        const requests = Array.from({ length: polls }, (_, i) =>
          rawRequest('POST', '/v1/events', { auth: ADMIN_KEY, body: JSON.stringify({ tenant: tenantOf(i), type: 'bench.wake', data: message(tenantOf(i), round) }) }),
        );
        return { requests, conns: NCHAN_PUBLISH_CONNS, requestOf: (i) => i };
      }
      if (fanout) {
        return {
          requests: [rawRequest('POST', '/v1/events', { auth: ADMIN_KEY, body: JSON.stringify({ tenant: FANOUT_TENANT, type: 'bench.wake', data: message(FANOUT_TENANT, round) }) })],
          conns: 1,
          requestOf: () => 0,
        };
      }
      const requests: string[] = [];
      for (let from = 0; from < polls; from += 1000) {
        const events = [];
        for (let i = from; i < Math.min(polls, from + 1000); i++) events.push({ tenant: tenantOf(i), type: 'bench.wake', data: message(tenantOf(i), round) });
        requests.push(rawRequest('POST', '/v1/events', { auth: ADMIN_KEY, body: JSON.stringify(events) }));
      }
      return { requests, conns: requests.length, requestOf: (i) => Math.floor(i / 1000) };
    },
  };
}

function nchanSide(server: NchanServer, fleet: PollFleet, fanout: boolean): Side {
  return {
    name: 'nchan',
    fleet,
    held: () => server.subscribers(),
    publish(round, polls) {
      if (fanout) return { requests: [nchanPublish(FANOUT_TENANT, JSON.stringify(message(FANOUT_TENANT, round)))], conns: 1, requestOf: () => 0 };
      const requests = Array.from({ length: polls }, (_, i) => nchanPublish(pollTenant(i), JSON.stringify(message(pollTenant(i), round))));
      return { requests, conns: NCHAN_PUBLISH_CONNS, requestOf: (i) => i };
    },
  };
}

export const pollgateSpecs = (consumers: Consumer[]): PollSpec[] => consumers.map((c) => ({ key: c.key, expect: c.tenant }));
export const nchanSpecs = (channels: string[]): PollSpec[] => channels.map((ch) => ({ channel: ch, expect: ch }));

export const scenario: Scenario = {
  name: 'wake',
  title: 'publish → wake latency of 1,000 and 10,000 held polls (one tenant each) and of a 1,000-poll fan-out, vs nginx+nchan',
  async run(ctx) {
    const rows: Row[] = [];
    const details: Record<string, unknown> = {};
    const fixture = await consumerFixture(ctx);
    const avail = ensureNchan();
    const server = await startPollgate({ template: fixture.template, profileDir: ctx.profileDir, profileName: `wake-${Date.now()}` });
    let nchan: NchanServer | null = null;
    const fleets: PollFleet[] = [];
    const fleet = () => {
      const f = new PollFleet();
      fleets.push(f);
      return f;
    };
    const results: VariantResult[] = [];
    const nofile = [`pollgate ${openFilesLimit(server.child.proc.pid)}`];
    try {
      let nchanReason = '';
      if (avail.ok) {
        try {
          nchan = await startNchan();
          nofile.push(`nginx worker ${nchan.workerNofile()}`);
        } catch (error) {
          nchanReason = (error as Error).message.split('\n')[0]!;
          ctx.log(`wake: nchan did not start: ${nchanReason}`);
        }
      } else nchanReason = avail.reason;

      const pgTenants = fleet();
      await pgTenants.init(server.port, 'pollgate', pollgateSpecs(fixture.perTenant));
      const pgFanout = fleet();
      await pgFanout.init(server.port, 'pollgate', pollgateSpecs(fixture.fanout));
      const sidesSingle: Side[] = [pollgateSide(server, pgTenants, 'single')];
      const sidesTenants: Side[] = [pollgateSide(server, pgTenants, 'batch')];
      const sidesFanout: Side[] = [pollgateSide(server, pgFanout, true)];
      if (nchan) {
        const ncTenants = fleet();
        await ncTenants.init(nchan.port, 'nchan', nchanSpecs(Array.from({ length: POLL_TENANTS }, (_, i) => pollTenant(i))));
        const ncFanout = fleet();
        await ncFanout.init(nchan.port, 'nchan', nchanSpecs(fixture.fanout.map(() => FANOUT_TENANT)));
        sidesTenants.push(nchanSide(nchan, ncTenants, false));
        sidesSingle.push(nchanSide(nchan, ncTenants, false));
        sidesFanout.push(nchanSide(nchan, ncFanout, true));
      }
      nofile.push(`poll clients ${fleets.flatMap((f) => f.nofile()).join('/')}`);
      ctx.log(`wake: open-files limits: ${nofile.join(', ')}`);

      const small = Math.max(3, ctx.runs + 2);
      results.push(await runVariant(ctx, '1,000 tenants, single-event publishes', sidesSingle, 1000, small));
      results.push(await runVariant(ctx, '1,000 tenants', sidesTenants, 1000, small));
      results.push(await runVariant(ctx, '10,000 tenants', sidesTenants, POLL_TENANTS, Math.max(3, ctx.runs)));
      results.push(await runVariant(ctx, 'fan-out', sidesFanout, fixture.fanout.length, small));

      const peerMissing = nchan ? undefined : `nchan not available: ${nchanReason}`;
      for (const v of results) {
        const pg = v.rounds.pollgate;
        const nc = v.rounds.nchan;
        const pooled = (side: 'pollgate' | 'nchan') =>
          v.pooled[side].length ? `${side} pooled over ${v.pooled[side].length} answers: p50 ${percentile(v.pooled[side], 50).toFixed(1)} ms, p99 ${percentile(v.pooled[side], 99).toFixed(1)} ms` : null;
        const notes = [
          `${pg.length} measured rounds (+1 warm-up), interleaved pollgate/nchan; spread is across rounds; latency from the publish request written to each answer received`,
          `open-files limits (soft, /proc/<pid>/limits): ${nofile.join(', ')}; poll client processes per side: ${fleets[0]!.nofile().length}`,
          pooled('pollgate'),
          pooled('nchan'),
          `all answered (from the first publish written): pollgate ${spread(pg.map((s) => s.all)).median.toFixed(1)} ms` +
            (nc.length ? `, nchan ${spread(nc.map((s) => s.all)).median.toFixed(1)} ms` : '') +
            `; publish answered: pollgate ${spread(pg.map((s) => s.publishMs)).median.toFixed(1)} ms` +
            (nc.length ? `, nchan ${spread(nc.map((s) => s.publishMs)).median.toFixed(1)} ms (last of its POSTs)` : ''),
          v.problems.length === 0 ? 'every poll answered 200 with exactly its one new message' : `PROBLEMS: ${v.problems.join(' | ')}`,
        ].filter((n): n is string => n !== null);
        const row = (stat: keyof RoundStats, label: string, target: boolean, withNotes: boolean): Row => {
          const p = spread(pg.map((s) => s[stat]));
          const b = nc.length ? spread(nc.map((s) => s[stat])) : null;
          return {
            label,
            better: 'lower',
            pollgate: p,
            baseline: b,
            peer: 'nchan',
            ...(peerMissing ? { baselineText: peerMissing } : {}),
            pairRatios: b ? pg.map((s, i) => s[stat] / nc[i]![stat]) : [],
            notes: withNotes ? notes : [],
            ...(target ? { target: '≤ nchan', met: b ? p.median <= b.median : null } : {}),
            failed: v.problems.length > 0,
          };
        };
        if (v.name === 'fan-out') {
          rows.push(row('all', `wake fan-out: 1,000 polls on 1 tenant, 1 event: all answered (ms)`, true, true));
          rows.push(row('p50', `wake fan-out: 1,000 polls on 1 tenant, 1 event: p50 (ms)`, false, false));
        } else if (v.name === '1,000 tenants, single-event publishes') {
          const label = `wake 1,000 polls, 1 per tenant, 1,000 single-event publishes over ${NCHAN_PUBLISH_CONNS} conns`;
          const p99 = row('p99', `${label}: p99 (ms)`, false, true);
          p99.target = '≤ 2× nchan (goal ≤ nchan)';
          p99.met = p99.baseline ? p99.pollgate!.median <= 2 * p99.baseline.median : null;
          p99.notes = [...p99.notes, `publishes: every event its own POST on both sides, pipelined round robin over the same ${NCHAN_PUBLISH_CONNS} keep-alive connections (pollgate: a durable commit each, grouped)`];
          rows.push(p99);
          rows.push(row('p50', `${label}: p50 (ms)`, false, false));
          rows.push(row('all', `${label}: all answered (ms)`, false, false));
        } else {
          const how = v.name === '1,000 tenants' ? '1,000 polls, 1 per tenant, 1 event per tenant (pollgate: one 1,000-event batch)' : '10,000 polls, 1 per tenant, 1 event per tenant (pollgate: 10 batches of 1,000)';
          rows.push(row('p99', `wake ${how}: p99 (ms)`, true, true));
          rows.push(row('p50', `wake ${how}: p50 (ms)`, false, false));
        }
        details[v.name] = { rounds: v.rounds, problems: v.problems };
      }
      details.openFiles = nofile;
    } finally {
      for (const f of fleets) await f.close();
      await server.stop();
      await nchan?.stop();
    }
    if (server.profileDir) {
      try {
        const profile = summarizeProfile(mainThreadProfile(server.profileDir), { skipFirstMs: server.startupMs });
        ctx.log(`wake: pollgate ${renderProfile(profile)}`);
        details.profile = profile;
      } catch (error) {
        ctx.log(`wake: could not read the profile in ${server.profileDir}: ${(error as Error).message}`);
      }
    }
    return { rows, details };
  },
};

/**
 * wake: publish → wake latency with 1,000 held long-polls, the hub's job.
 *
 * Variant "1000 tenants": 1,000 consumers, one tenant each (w000…w999). Each round all 1,000
 * polls are held, then ONE request publishes an array of 1,000 events, one per tenant (the
 * fair "one commit" case: one fsync, then the hub wakes everybody). Latency per poll: from
 * the publish request being written to that poll's response fully received.
 * Variant "1 tenant fan-out": 1,000 consumers on one tenant, one single-event publish; the
 * figure that matters is when the last of the 1,000 has its answer.
 *
 * The client is bench/lib/poll-client.ts in its own process (raw sockets, one per poll), so
 * neither the server's nor this process's event loop times it. Before each publish we check
 * that every poll is really held: the admin API says `polling: true` for all 1,000 and the
 * client has received none of their answers. Every answer must be a 200 with exactly the one
 * new event of its tenant; polls are re-armed with ack= the cursor they got (one ack commit
 * per poll, as a real consumer does). One unmeasured warm-up round precedes the measured ones.
 * No in-run baseline yet (nginx + nchan comes later): absolute milliseconds only.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, track } from './lib/proc.ts';
import type { Row, Scenario, ScenarioContext } from './lib/scenario.ts';
import { ADMIN_KEY, adminJson, startPollgate, type PollgateServer } from './lib/servers.ts';
import { mainThreadProfile, renderProfile, summarizeProfile } from './lib/profile.ts';
import { percentile, spread } from './lib/stats.ts';

const POLLS = 1000;
const WAIT_S = 30;
const HELD_TIMEOUT_MS = 15_000;
const FIRE_TIMEOUT_MS = 20_000;
const CREATE_CONCURRENCY = 50;

interface FireResult {
  complete: boolean;
  missing: number;
  latenciesMs: number[];
  statuses: Record<string, number>;
  eventCounts: Record<string, number>;
  distinctTenants: number;
  publishStatus: number;
  publishMs: number;
}

interface RoundStats {
  p50: number;
  p99: number;
  max: number;
  publishMs: number;
}

/** The forked poll client, driven by request/response messages. */
class PollClient {
  private next = 1;
  private waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly child: ChildProcess;

  constructor() {
    this.child = track(
      fork(join(ROOT, 'bench/lib/poll-client.ts'), [], {
        cwd: ROOT,
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    this.child.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      if (m.ok) w?.resolve(m.result);
      else w?.reject(new Error(`poll client: ${m.error}`));
    });
    this.child.once('exit', (code) => {
      for (const w of this.waiting.values()) w.reject(new Error(`poll client exited (${code})`));
      this.waiting.clear();
    });
  }

  request<T>(msg: Record<string, unknown>, timeoutMs = 60_000): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`poll client did not answer ${String(msg.op)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ ...msg, id });
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.request({ op: 'close' }, 5000).catch(() => this.child.kill('SIGKILL'));
    await exited;
  }
}

interface Consumer {
  id: string;
  key: string;
}

async function createConsumers(server: PollgateServer, tenants: string[]): Promise<Consumer[]> {
  const out: Consumer[] = new Array(tenants.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < tenants.length; i = next++) {
      const c = await adminJson<{ id: string; key: string }>(server, 'POST', '/v1/consumers', { tenant: tenants[i] }, 201);
      out[i] = { id: c.id, key: c.key };
    }
  };
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, worker));
  return out;
}

/** How many of ids the admin API reports with a held poll (`polling: true`). */
async function countHeld(server: PollgateServer, ids: Set<string>, tenant: string | undefined): Promise<number> {
  let held = 0;
  let after: string | null = null;
  do {
    const q: string = `/v1/consumers?limit=1000${tenant ? `&tenant=${tenant}` : ''}${after ? `&after=${after}` : ''}`;
    const page: { consumers: Array<{ id: string; polling: boolean }>; next: string | null } = await adminJson(server, 'GET', q, undefined, 200);
    for (const c of page.consumers) if (c.polling && ids.has(c.id)) held += 1;
    after = page.next;
  } while (after);
  return held;
}

async function waitAllHeld(server: PollgateServer, ids: Set<string>, tenant: string | undefined): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const held = await countHeld(server, ids, tenant);
    if (held === ids.size) return Date.now() - t0;
    if (Date.now() - t0 > HELD_TIMEOUT_MS) throw new Error(`only ${held} of ${ids.size} polls were held after ${HELD_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Variant {
  name: string;
  consumers: Consumer[];
  /** Restricts the held check to one tenant's consumers (cheaper listing). */
  tenant: string | undefined;
  body: (round: number) => string;
  /** What each poll must receive: its one event. */
  expectTenants: number;
}

async function runVariant(ctx: ScenarioContext, server: PollgateServer, v: Variant, rounds: number): Promise<{ rounds: RoundStats[]; samples: number[]; problems: string[] }> {
  const client = new PollClient();
  const ids = new Set(v.consumers.map((c) => c.id));
  const stats: RoundStats[] = [];
  const samples: number[] = [];
  const problems: string[] = [];
  try {
    await client.request({ op: 'init', port: server.port, keys: v.consumers.map((c) => c.key), adminKey: ADMIN_KEY });
    for (let round = 0; round <= rounds; round++) {
      const label = round === 0 ? 'warm-up' : `round ${round}/${rounds}`;
      await client.request({ op: 'arm', waitS: WAIT_S, limit: 100 });
      const heldMs = await waitAllHeld(server, ids, v.tenant);
      const check = await client.request<{ early: number; earlySample: string[]; pending: number }>({ op: 'check' });
      if (check.early > 0 || check.pending !== POLLS) {
        throw new Error(`${v.name} ${label}: ${check.early} polls answered before the publish (${check.earlySample.join(' | ')})`);
      }
      const r = await client.request<FireResult>({ op: 'fire', body: v.body(round), timeoutMs: FIRE_TIMEOUT_MS });
      const bad: string[] = [];
      if (r.publishStatus !== 201) bad.push(`publish answered ${r.publishStatus}`);
      if (!r.complete || r.missing > 0) bad.push(`${r.missing} polls unanswered after ${FIRE_TIMEOUT_MS} ms`);
      if ((r.statuses['200'] ?? 0) !== POLLS) bad.push(`statuses ${JSON.stringify(r.statuses)}`);
      if ((r.eventCounts['1'] ?? 0) !== POLLS) bad.push(`events per answer ${JSON.stringify(r.eventCounts)} (want exactly 1 each)`);
      if (r.distinctTenants !== v.expectTenants) bad.push(`${r.distinctTenants} distinct tenants in the answers, want ${v.expectTenants}`);
      if (bad.length > 0) {
        problems.push(`${label}: ${bad.join('; ')}`);
        ctx.log(`wake ${v.name} ${label}: PROBLEM ${bad.join('; ')}`);
      }
      const s: RoundStats = {
        p50: percentile(r.latenciesMs, 50),
        p99: percentile(r.latenciesMs, 99),
        max: Math.max(...r.latenciesMs),
        publishMs: r.publishMs,
      };
      ctx.log(
        `wake ${v.name} ${label}: held in ${heldMs} ms; p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms, ` +
          `max ${s.max.toFixed(1)} ms; publish answered in ${s.publishMs.toFixed(1)} ms`,
      );
      if (round === 0) continue;
      stats.push(s);
      samples.push(...r.latenciesMs);
    }
  } finally {
    await client.close();
  }
  return { rounds: stats, samples, problems };
}

export const scenario: Scenario = {
  name: 'wake',
  title: 'publish → wake latency of 1,000 held polls (1,000 tenants; and 1 tenant fan-out)',
  async run(ctx) {
    const rounds = Math.max(3, ctx.runs + 2);
    const server = await startPollgate({ profileDir: ctx.profileDir, profileName: `wake-${Date.now()}` });
    const rows: Row[] = [];
    const details: Record<string, unknown> = {};
    try {
      const tenants = Array.from({ length: POLLS }, (_, i) => `w${String(i).padStart(3, '0')}`);
      const t0 = Date.now();
      const perTenant = await createConsumers(server, tenants);
      const fanout = await createConsumers(server, tenants.map(() => 'fanout'));
      ctx.log(`wake: created ${perTenant.length + fanout.length} consumers in ${Date.now() - t0} ms`);

      const variants: Variant[] = [
        {
          name: '1000 tenants',
          consumers: perTenant,
          tenant: undefined,
          body: (round) => JSON.stringify(tenants.map((tenant, i) => ({ tenant, type: 'bench.wake', data: { round, i } }))),
          expectTenants: POLLS,
        },
        {
          name: '1 tenant fan-out',
          consumers: fanout,
          tenant: 'fanout',
          body: (round) => JSON.stringify({ tenant: 'fanout', type: 'bench.wake', data: { round } }),
          expectTenants: 1,
        },
      ];
      for (const v of variants) {
        const r = await runVariant(ctx, server, v, rounds);
        details[v.name] = {
          rounds: r.rounds,
          pooled: { p50: percentile(r.samples, 50), p99: percentile(r.samples, 99), max: Math.max(...r.samples), n: r.samples.length },
          problems: r.problems,
        };
        const notes = [
          `${rounds} measured rounds (+1 warm-up) of ${POLLS} held polls; spread is across rounds`,
          `pooled over all ${r.samples.length} answers: p50 ${percentile(r.samples, 50).toFixed(1)} ms, p99 ${percentile(r.samples, 99).toFixed(1)} ms`,
          `publish answered in ${spread(r.rounds.map((s) => s.publishMs)).median.toFixed(1)} ms (median)`,
          r.problems.length === 0 ? 'every poll answered 200 with exactly its one new event' : `PROBLEMS: ${r.problems.join(' | ')}`,
        ];
        const failed = r.problems.length > 0;
        const what = v.name === '1000 tenants' ? `wake ${POLLS} polls, ${POLLS} tenants, 1 publish of ${POLLS}` : `wake ${POLLS} polls on 1 tenant, 1 event`;
        const row = (stat: keyof RoundStats, label: string): Row => ({
          label: `${what}: ${label} (ms)`,
          better: 'lower',
          pollgate: spread(r.rounds.map((s) => s[stat])),
          baseline: null,
          notes: stat === 'p50' ? notes : [],
          failed,
        });
        if (v.name === '1000 tenants') rows.push(row('p50', 'p50'), row('p99', 'p99'), row('max', 'max'));
        else rows.push(row('p50', 'p50'), row('max', 'all answered'));
      }
    } finally {
      await server.stop();
    }
    if (server.profileDir) {
      try {
        const profile = summarizeProfile(mainThreadProfile(server.profileDir), { skipFirstMs: server.startupMs });
        ctx.log(renderProfile(profile));
        details.profile = profile;
      } catch (error) {
        ctx.log(`wake: could not read the profile: ${(error as Error).message}`);
      }
    }
    return { rows, details };
  },
};

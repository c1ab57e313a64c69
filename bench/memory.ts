/**
 * memory: server memory per idle held long-poll at 10,000, pollgate against nginx + nchan.
 *
 * Each run starts both servers fresh (pollgate on a copy of the fixture data dir with 10,000
 * consumers, one per tenant; nchan with an empty config), warms pollgate up with 200 polls
 * answered at once (wait=0: the routes, auth and the poll path run, no poll is held), then:
 *   idle RSS   → hold 10,000 polls (pollgate: 10,000 consumers; nchan: 10,000 subscribers on
 *                10,000 channels), the server confirms all are held, 1.5 s settle → held RSS
 *   per poll = (held RSS − idle RSS) ÷ 10,000.
 * RSS is VmRSS from /proc: pollgate's one process (all its threads); for nginx the master and
 * its worker summed (worker_processes 1). Each RSS figure is the median of 5 samples 100 ms
 * apart. The client sockets live in another process and are not counted. Runs: ≥3, each with
 * fresh servers, pollgate and nchan alternately.
 *
 * A third server in each run, for the notes: a plain node:http long-poll server
 * (baseline/plain-http-poll.ts: the request, its response, a timer and a map entry per held
 * poll, no framework), held the same way with the same client requests: the floor any Node
 * server starts from, so the notes can split pollgate's figure into Node's and its own.
 */
import { consumerFixture, heldPolls, POLL_TENANTS, pollTenant, waitForCount } from './lib/consumers.ts';
import { ensureNchan, startNchan, type NchanServer } from './lib/nchan.ts';
import { PollFleet } from './lib/poll-fleet.ts';
import { pssKiB, rssKiB, spawnNode } from './lib/proc.ts';
import type { Row, Scenario } from './lib/scenario.ts';
import { startPollgate } from './lib/servers.ts';
import { median, spread } from './lib/stats.ts';
import { nchanSpecs, pollgateSpecs } from './wake.ts';

const WAIT_S = 60;
const WARMUP_POLLS = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function sampleRss(read: () => number | null): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const v = read();
    if (v === null) throw new Error('the server is gone (no /proc/<pid>/status)');
    samples.push(v);
    await sleep(100);
  }
  return median(samples);
}

/** baseline/plain-http-poll.ts, fresh: its pid and port. */
async function startPlainPoll(): Promise<{ pid: number; port: number; stop: () => Promise<unknown> }> {
  const child = spawnNode('bench/baseline/plain-http-poll.ts');
  try {
    const line = await child.waitForJson((l) => l.msg === 'plain poll listening', 30_000);
    return { pid: child.proc.pid!, port: line.port as number, stop: () => child.stop() };
  } catch (error) {
    await child.stop(2000);
    throw error;
  }
}

async function plainHeld(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  const m = /pollgate_polls_held (\d+)/.exec(await res.text());
  return m ? Number(m[1]) : Number.NaN;
}

export const scenario: Scenario = {
  name: 'memory',
  title: 'RSS per idle held long-poll at 10,000 held polls, vs nginx+nchan',
  async run(ctx) {
    const fixture = await consumerFixture(ctx);
    const avail = ensureNchan();
    const polls = POLL_TENANTS;
    const pg: Array<{ idle: number; held: number; perPoll: number; pss: [number, number] }> = [];
    const nc: Array<{ idle: number; held: number; perPoll: number; pss: [number, number]; split: string }> = [];
    const plain: Array<{ idle: number; held: number; perPoll: number }> = [];
    let plainProblem = '';
    let nchanReason = avail.ok ? '' : avail.reason;
    for (let run = 1; run <= ctx.runs; run++) {
      // plain node:http, for the notes (the same client, the same requests as pollgate's)
      {
        let server: Awaited<ReturnType<typeof startPlainPoll>> | null = null;
        const fleet = new PollFleet();
        try {
          server = await startPlainPoll();
          const { pid, port } = server;
          await sleep(1000);
          const idle = await sampleRss(() => rssKiB(pid));
          await fleet.init(port, 'pollgate', pollgateSpecs(fixture.perTenant.slice(0, polls)));
          await fleet.arm(WAIT_S, 100);
          const heldMs = await waitForCount('plain node:http: polls held', () => plainHeld(port), polls, 60_000);
          await sleep(1500);
          const held = await sampleRss(() => rssKiB(pid));
          const perPoll = ((held - idle) * 1024) / polls;
          plain.push({ idle, held, perPoll });
          ctx.log(`memory run ${run}: plain node:http idle ${(idle / 1024).toFixed(1)} MiB, ${polls} held (in ${heldMs} ms) ${(held / 1024).toFixed(1)} MiB → ${(perPoll / 1024).toFixed(2)} KiB per poll`);
        } catch (error) {
          plainProblem = (error as Error).message.split('\n')[0]!;
          ctx.log(`memory: plain node:http failed: ${plainProblem}`);
        } finally {
          await fleet.close();
          await server?.stop();
        }
      }
      // pollgate
      {
        const server = await startPollgate({ template: fixture.template });
        const fleet = new PollFleet();
        try {
          await Promise.all(
            fixture.perTenant.slice(0, WARMUP_POLLS).map(async (c) => {
              const res = await fetch(`${server.url}/v1/events?wait=0`, { headers: { authorization: `Bearer ${c.key}` } });
              await res.arrayBuffer();
              if (res.status !== 200) throw new Error(`warm-up poll answered ${res.status}`);
            }),
          );
          await sleep(1000);
          const pid = server.child.proc.pid;
          const idle = await sampleRss(() => rssKiB(pid));
          const pss0 = pssKiB(pid) ?? Number.NaN;
          await fleet.init(server.port, 'pollgate', pollgateSpecs(fixture.perTenant.slice(0, polls)));
          await fleet.arm(WAIT_S, 100);
          const heldMs = await waitForCount('pollgate: polls held', () => heldPolls(server), polls, 60_000);
          await sleep(1500);
          const held = await sampleRss(() => rssKiB(pid));
          const pss1 = pssKiB(pid) ?? Number.NaN;
          const check = await fleet.check();
          if (check.early > 0) throw new Error(`pollgate: ${check.early} polls answered while they should be held (${check.earlySample.join(' | ')})`);
          const perPoll = ((held - idle) * 1024) / polls;
          pg.push({ idle, held, perPoll, pss: [pss0, pss1] });
          ctx.log(`memory run ${run}: pollgate idle ${(idle / 1024).toFixed(1)} MiB, ${polls} held (in ${heldMs} ms) ${(held / 1024).toFixed(1)} MiB → ${(perPoll / 1024).toFixed(2)} KiB per poll`);
        } finally {
          await fleet.close();
          await server.stop();
        }
      }
      // nchan
      if (avail.ok) {
        let nchan: NchanServer | null = null;
        const fleet = new PollFleet();
        try {
          nchan = await startNchan();
          await sleep(1000);
          const server = nchan;
          const idle = await sampleRss(() => server.rssKiB());
          const mem0 = server.memory();
          await fleet.init(server.port, 'nchan', nchanSpecs(Array.from({ length: polls }, (_, i) => pollTenant(i))));
          await fleet.arm(WAIT_S, 100);
          const heldMs = await waitForCount('nchan: subscribers', () => server.subscribers(), polls, 60_000);
          await sleep(1500);
          const held = await sampleRss(() => server.rssKiB());
          const mem1 = server.memory();
          const check = await fleet.check();
          if (check.early > 0) throw new Error(`nchan: ${check.early} polls answered while they should be held (${check.earlySample.join(' | ')})`);
          const perPoll = ((held - idle) * 1024) / polls;
          const sum = (m: typeof mem0, k: 'rss' | 'pss') => m.reduce((n, p) => n + p[k], 0);
          const split = mem1
            .map((p) => `${p.role} RSS +${(((p.rss - (mem0.find((q) => q.pid === p.pid)?.rss ?? 0)) * 1024) / polls / 1024).toFixed(2)} KiB/poll`)
            .join(', ');
          nc.push({ idle, held, perPoll, pss: [sum(mem0, 'pss'), sum(mem1, 'pss')], split });
          ctx.log(`memory run ${run}: nchan idle ${(idle / 1024).toFixed(1)} MiB (master+worker), ${polls} held (in ${heldMs} ms) ${(held / 1024).toFixed(1)} MiB → ${(perPoll / 1024).toFixed(2)} KiB per poll`);
        } catch (error) {
          nchanReason = (error as Error).message.split('\n')[0]!;
          ctx.log(`memory: nchan failed: ${nchanReason}`);
        } finally {
          await fleet.close();
          await nchan?.stop();
        }
      }
    }
    const p = spread(pg.map((r) => r.perPoll / 1024));
    const b = nc.length === pg.length ? spread(nc.map((r) => r.perPoll / 1024)) : null;
    const mib = (k: number) => (k / 1024).toFixed(1);
    const perPss = ([a, b]: [number, number]) => ((b - a) / polls * 1024 / 1024).toFixed(2);
    const row: Row = {
      label: `memory per idle held poll at ${polls.toLocaleString('en-US')} held (KiB RSS per poll)`,
      better: 'lower',
      pollgate: p,
      baseline: b,
      peer: 'nchan',
      ...(b ? {} : { baselineText: `nchan not available: ${nchanReason}` }),
      pairRatios: b ? pg.map((r, i) => r.perPoll / nc[i]!.perPoll) : [],
      target: '≤ nchan',
      met: b ? p.median <= b.median : null,
      notes: [
        `${pg.length} runs, fresh servers each; (RSS with ${polls} polls held − idle RSS) ÷ ${polls}; nginx = master + 1 worker summed`,
        `pollgate RSS idle → held (MiB): ${pg.map((r) => `${mib(r.idle)} → ${mib(r.held)}`).join(', ')}`,
        ...(nc.length ? [`nchan RSS idle → held (MiB): ${nc.map((r) => `${mib(r.idle)} → ${mib(r.held)}`).join(', ')}; by process: ${nc.map((r) => r.split).join(' / ')}`] : []),
        `by PSS instead of RSS (shared pages split between processes), KiB per poll: pollgate ${pg.map((r) => perPss(r.pss)).join(', ')}` +
          (nc.length ? `; nchan ${nc.map((r) => perPss(r.pss)).join(', ')}` : ''),
        plain.length
          ? `plain node:http long-poll server (baseline/plain-http-poll.ts, same client and requests), same runs: ${spread(plain.map((r) => r.perPoll / 1024)).median.toFixed(2)} KiB per poll ` +
            `(${plain.map((r) => (r.perPoll / 1024).toFixed(2)).join(', ')}; idle → held MiB ${plain.map((r) => `${mib(r.idle)} → ${mib(r.held)}`).join(', ')}); ` +
            `pollgate ÷ plain node:http ${(p.median / spread(plain.map((r) => r.perPoll / 1024)).median).toFixed(2)}×`
          : `plain node:http baseline not measured: ${plainProblem}`,
      ],
    };
    return { rows: [row], details: { pollgate: pg, nchan: nc, plainNodeHttp: plain } };
  },
};

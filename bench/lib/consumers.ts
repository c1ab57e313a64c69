/**
 * Consumers for the benches that hold many polls (wake, memory, publish-held), created
 * through the admin API.
 *
 * Creating 11,000 consumers takes a while (each is a durable commit), so it is done once per
 * `npm run bench`: a pollgate is started, the consumers are created, the server is stopped
 * and its data directory is kept as a template. Each scenario then starts its own fresh
 * pollgate on a copy of that directory (startPollgate({ template })): a new process, the same
 * consumers, the keys known.
 */
import type { ScenarioContext } from './scenario.ts';
import { adminJson, readMetrics, startPollgate, type RunningServer } from './servers.ts';

export interface Consumer {
  id: string;
  key: string;
  tenant: string;
}

const CREATE_CONCURRENCY = 64;

export async function createConsumers(server: RunningServer, tenants: string[], extra: Record<string, unknown> = {}): Promise<Consumer[]> {
  const out: Consumer[] = new Array(tenants.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < tenants.length; i = next++) {
      const c = await adminJson<{ id: string; key: string }>(server, 'POST', '/v1/consumers', { tenant: tenants[i], ...extra }, 201);
      out[i] = { id: c.id, key: c.key, tenant: tenants[i]! };
    }
  };
  await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, worker));
  return out;
}

/** Tenants w00000…w09999: one consumer each. */
export const POLL_TENANTS = 10_000;
export const pollTenant = (i: number) => `w${String(i).padStart(5, '0')}`;
export const FANOUT_TENANT = 'fanout';
export const FANOUT_CONSUMERS = 1000;

export interface ConsumerFixture {
  /** A stopped pollgate's data directory with all the consumers below. */
  template: string;
  /** One consumer per tenant w00000…w09999, in that order. */
  perTenant: Consumer[];
  /** 1,000 consumers of the tenant "fanout". */
  fanout: Consumer[];
}

let fixture: Promise<ConsumerFixture> | null = null;

export function consumerFixture(ctx: ScenarioContext): Promise<ConsumerFixture> {
  fixture ??= (async () => {
    const t0 = Date.now();
    const server = await startPollgate({ keepDataDir: true });
    try {
      const perTenant = await createConsumers(server, Array.from({ length: POLL_TENANTS }, (_, i) => pollTenant(i)));
      const fanout = await createConsumers(server, Array.from({ length: FANOUT_CONSUMERS }, () => FANOUT_TENANT));
      ctx.log(`fixture: created ${perTenant.length + fanout.length} consumers in ${((Date.now() - t0) / 1000).toFixed(1)} s (kept as a template data dir)`);
      const code = await server.stop();
      if (code !== 0) throw new Error(`the fixture's pollgate exited with ${code} on SIGTERM`);
      return { template: server.dataDir, perTenant, fanout };
    } catch (error) {
      await server.stop();
      throw error;
    }
  })();
  fixture.catch(() => {
    fixture = null;
  });
  return fixture;
}

/** pollgate_polls_held from /metrics. */
export async function heldPolls(server: RunningServer): Promise<number> {
  const m = await readMetrics(server);
  const held = m?.get('pollgate_polls_held');
  if (held === undefined) throw new Error('/metrics has no pollgate_polls_held');
  return held;
}

/** Waits until `count` of something is reached (polls held, subscribers…); answers the ms it took. */
export async function waitForCount(what: string, count: () => Promise<number>, want: number, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  // Backing off to 250 ms: pollgate's /metrics computes every consumer's lag, which is not free
  // with 11,000 consumers, and the server is busy taking the polls in.
  for (let delay = 25; ; delay = Math.min(250, delay * 2)) {
    const n = await count();
    if (n === want) return Date.now() - t0;
    if (n > want) throw new Error(`${what}: ${n}, more than the ${want} expected`);
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: only ${n} of ${want} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
  }
}

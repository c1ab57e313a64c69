/**
 * The soak's webhook receivers, their own process (driven over IPC by bench/soak.ts): a few
 * node:http servers on 127.0.0.1, each endpoint (port + path) behaving as its path says:
 *
 *   /ok/<n>          200 to everything
 *   /flaky/<n>       500 to the first attempt of every 4th event (by sequence number), then 200
 *   /fail/<n>        500 to everything
 *   /reset/<n>       destroys the connection as soon as the request arrives (no answer)
 *   /hang/<n>        never answers: the request stays open until the sender gives up on it
 *   /stops/<n>?after=K   200 to the first K distinct events, 500 to everything after
 *
 * Every request is recorded per endpoint in arrival order as [sequence number, status
 * answered] (0: reset, -1: hung), so the soak can tell exactly which events were accepted and
 * compare the consumer's committed cursor with the last one. The sequence number comes from
 * the `webhook-id` header (the producer id `soak-<seq>`); the latency of a first 2xx is its
 * arrival − `data.sent` of the body (CLOCK_MONOTONIC, like the poll fleet's).
 *
 * Ops (answered with the same id):
 *   listen {ports}   open that many servers; answers their ports
 *   stats            counters since the previous stats; hung requests still open right now
 *   received         per endpoint: [seq, status][] in arrival order
 *   close            close everything and exit
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveParent } from './ipc.ts';

const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export type Behaviour = 'ok' | 'flaky' | 'fail' | 'reset' | 'hang' | 'stops';

export interface ReceiverStats {
  /** Requests by behaviour and the answer given ("ok 200", "fail 500", "reset 0", "hang -1"). */
  requests: Record<string, number>;
  /** First 2xx of an event at a healthy endpoint (ok, flaky): its latency. */
  latency: { count: number; p50: number; p99: number; max: number };
  /** Requests to /hang still open (the sender has not closed them). */
  hungOpen: number;
  /** Connections open to all the servers right now. */
  connections: number;
}

const servers: http.Server[] = [];
const log = new Map<string, Array<[number, number]>>();
const accepted = new Map<string, Set<number>>();
const hung = new Set<http.ServerResponse>();
let requests: Record<string, number> = {};
let latencies: number[] = [];

function behaviourOf(path: string): { behaviour: Behaviour | null; after: number } {
  const url = new URL(path, 'http://x');
  const behaviour = url.pathname.split('/')[1] as Behaviour;
  const known: Behaviour[] = ['ok', 'flaky', 'fail', 'reset', 'hang', 'stops'];
  return { behaviour: known.includes(behaviour) ? behaviour : null, after: Number(url.searchParams.get('after') ?? 0) };
}

function onRequest(port: number, req: http.IncomingMessage, res: http.ServerResponse): void {
  const arrived = monoMs();
  const endpoint = `${port}${req.url ?? ''}`;
  const id = req.headers['webhook-id'];
  const seq = typeof id === 'string' && id.startsWith('soak-') ? Number(id.slice(5)) : Number.NaN;
  const { behaviour, after } = behaviourOf(req.url ?? '/');
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    let entries = log.get(endpoint);
    if (!entries) log.set(endpoint, (entries = []));
    let seen = accepted.get(endpoint);
    if (!seen) accepted.set(endpoint, (seen = new Set()));
    let status: number;
    switch (behaviour) {
      case 'ok':
        status = 200;
        break;
      case 'flaky':
        status = seq % 4 === 0 && !entries.some(([s]) => s === seq) ? 500 : 200;
        break;
      case 'stops':
        status = seen.has(seq) || seen.size < after ? 200 : 500;
        break;
      case 'fail':
        status = 500;
        break;
      case 'reset':
        status = 0;
        break;
      case 'hang':
        status = -1;
        break;
      default:
        status = 404;
    }
    entries.push([seq, status]);
    requests[`${behaviour} ${status}`] = (requests[`${behaviour} ${status}`] ?? 0) + 1;
    if (status === 0) {
      req.socket.destroy();
      return;
    }
    if (status === -1) {
      hung.add(res);
      res.once('close', () => hung.delete(res));
      return;
    }
    if (status === 200 && !seen.has(seq)) {
      seen.add(seq);
      if (behaviour === 'ok' || behaviour === 'flaky') {
        try {
          const sent = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: { sent?: unknown } }).data?.sent;
          if (typeof sent === 'number') latencies.push(arrived - sent);
        } catch {
          // not an envelope: no latency
        }
      }
    }
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(status === 200 ? 'ok' : 'no');
  });
}

async function listen(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = http.createServer({ keepAliveTimeout: 60_000, requestTimeout: 0 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    server.on('request', (req, res) => onRequest(port, req, res));
    servers.push(server);
    ports.push(port);
  }
  return ports;
}

function quantile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}

async function connectionCount(): Promise<number> {
  const counts = await Promise.all(servers.map((s) => new Promise<number>((resolve) => s.getConnections((_, n) => resolve(n ?? 0)))));
  return counts.reduce((a, b) => a + b, 0);
}

async function takeStats(): Promise<ReceiverStats> {
  const sorted = latencies.sort((a, b) => a - b);
  const out: ReceiverStats = {
    requests,
    latency: { count: sorted.length, p50: quantile(sorted, 50), p99: quantile(sorted, 99), max: sorted.at(-1) ?? Number.NaN },
    hungOpen: hung.size,
    connections: await connectionCount(),
  };
  requests = {};
  latencies = [];
  return out;
}

type Message = { id: number; op: 'listen'; ports: number } | { id: number; op: 'stats' } | { id: number; op: 'received' } | { id: number; op: 'close' };

async function handle(msg: Message): Promise<unknown> {
  switch (msg.op) {
    case 'listen':
      return { ports: await listen(msg.ports) };
    case 'stats':
      return takeStats();
    case 'received':
      return { endpoints: Object.fromEntries(log) };
    case 'close':
      for (const s of servers) s.closeAllConnections();
      setImmediate(() => process.exit(0));
      return {};
  }
}

serveParent(handle);

/**
 * The push bench's webhook receiver, its own process (spawned by bench/push.ts, driven over
 * IPC): plain node:http servers on 127.0.0.1 that answer every request 204 with no body and
 * record the `webhook-id` header per endpoint (port + path). Nothing is verified while
 * deliveries arrive (no signature check, no JSON parse), so the receiver costs as little as a
 * receiver can.
 *
 * Ops (answered with the same id):
 *   listen {ports}             open that many servers on free ports; answers their ports
 *   expect {count}             reset; from now on count distinct ids per endpoint and report
 *                              {op:'done', at} (monotonic ms) once `count` distinct ids came in
 *   report                     per endpoint: the ids in arrival order (duplicates included)
 *   close                      close and exit
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveParent } from './ipc.ts';

const monoMs = (): number => Number(process.hrtime.bigint()) / 1e6;

type Message =
  | { id: number; op: 'listen'; ports: number }
  | { id: number; op: 'expect'; count: number }
  | { id: number; op: 'report' }
  | { id: number; op: 'close' };

const servers: http.Server[] = [];
let ids = new Map<string, string[]>();
let distinct = new Map<string, Set<string>>();
let distinctTotal = 0;
let expected = Number.POSITIVE_INFINITY;
let requests = 0;
let lastAt = 0;

function onRequest(port: number, req: http.IncomingMessage, res: http.ServerResponse): void {
  const endpoint = `${port}${req.url ?? ''}`;
  const id = req.headers['webhook-id'];
  req.resume();
  req.on('end', () => {
    requests += 1;
    lastAt = monoMs();
    if (typeof id === 'string') {
      let list = ids.get(endpoint);
      if (!list) ids.set(endpoint, (list = []));
      list.push(id);
      let set = distinct.get(endpoint);
      if (!set) distinct.set(endpoint, (set = new Set()));
      if (!set.has(id)) {
        set.add(id);
        distinctTotal += 1;
        if (distinctTotal === expected) process.send!({ op: 'done', at: lastAt, requests });
      }
    }
    res.writeHead(204);
    res.end();
  });
}

async function listen(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = http.createServer({ keepAliveTimeout: 60_000 });
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

async function handle(msg: Message): Promise<unknown> {
  switch (msg.op) {
    case 'listen':
      return { ports: await listen(msg.ports) };
    case 'expect':
      ids = new Map();
      distinct = new Map();
      distinctTotal = 0;
      requests = 0;
      expected = msg.count;
      return {};
    case 'report':
      return { endpoints: Object.fromEntries(ids), requests, lastAt };
    case 'close':
      for (const s of servers) s.closeAllConnections();
      setImmediate(() => process.exit(0));
      return {};
  }
}

serveParent(handle);

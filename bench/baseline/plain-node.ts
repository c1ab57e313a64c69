/**
 * The second in-run baseline for publishing: plain `node:http`, no framework, an in-memory
 * log. POST /v1/events does the same parse-and-answer as pollgate's publish, minus
 * durability: read the body, JSON.parse, check the shape minimally (an event object with a
 * string tenant and type and a data field, or an array of 1 to 1000 of them), push each event
 * onto an in-memory array with a position, and answer 201 with pollgate's envelope JSON (the
 * batch as {"events":[…]}). No auth, no storage, no fsync, no log line.
 *
 * pollgate ÷ this is what a durable, authenticated, logged publish costs against the least a
 * Node server can do for the same request on the same machine at the same moment.
 *
 * Prints {"msg":"baseline listening","port":N} once bound (port 0: the OS picks one).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Stored {
  pos: number;
  id: string;
  tenant: string;
  type: string;
  time: number;
  data: unknown;
}

/** Bounded so a long run does not measure the garbage collector walking millions of events. */
const KEEP = 200_000;
let log: Stored[] = [];
let pos = 0;

const isEvent = (e: unknown): e is { tenant: string; type: string; data: unknown; id?: string } =>
  typeof e === 'object' && e !== null && !Array.isArray(e) && typeof (e as { tenant?: unknown }).tenant === 'string' &&
  typeof (e as { type?: unknown }).type === 'string' && 'data' in e;

function store(e: { tenant: string; type: string; data: unknown; id?: string }): string {
  pos += 1;
  const time = Date.now();
  const stored: Stored = { pos, id: e.id ?? `evt_${pos.toString(36)}`, tenant: e.tenant, type: e.type, time, data: e.data };
  if (log.length >= KEEP) log = [];
  log.push(stored);
  return `{"id":"${stored.id}","cursor":"t${String(pos).padStart(16, '0')}","type":"${e.type}","tenant":"${e.tenant}","time":"${new Date(time).toISOString()}","data":${JSON.stringify(e.data)}}`;
}

function answer(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function publish(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    let body: unknown;
    try {
      body = JSON.parse((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8'));
    } catch {
      return answer(res, 400, '{"error":{"code":"invalid_json"}}');
    }
    if (Array.isArray(body)) {
      if (body.length === 0 || body.length > 1000 || !body.every(isEvent)) return answer(res, 400, '{"error":{"code":"invalid_field"}}');
      return answer(res, 201, `{"events":[${body.map(store).join(',')}]}`);
    }
    if (!isEvent(body)) return answer(res, 400, '{"error":{"code":"invalid_field"}}');
    answer(res, 201, store(body));
  });
}

const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/v1/events') return publish(req, res);
  if (req.url === '/healthz') return answer(res, 200, '{"status":"ok"}');
  req.resume();
  answer(res, 404, '{"error":{"code":"not_found"}}');
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'baseline listening', port: (server.address() as AddressInfo).port })}\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

/**
 * The memory bench's floor: a plain node:http long-poll server, no framework, no storage.
 * GET /v1/events?wait=S (any Bearer key) is held until its wait runs out, then answered with
 * an empty page shaped like pollgate's; one held request per key, as pollgate holds one poll
 * per consumer (a newer one ends the older with 409). It keeps what any long-poll server must:
 * the request and response, a timer, and an entry in a map. What a held poll costs pollgate
 * above this is the gateway's own (framework, auth, the hub's bookkeeping).
 *
 * GET /metrics answers `pollgate_polls_held N`, so the bench confirms the count the same way
 * it does for pollgate. Prints {"msg":"plain poll listening","port":N} once bound (port 0).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Held {
  res: ServerResponse;
  timer: NodeJS.Timeout;
}

const held = new Map<string, Held>();

function answer(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function release(key: string, entry: Held): void {
  if (held.get(key) !== entry) return;
  held.delete(key);
  clearTimeout(entry.timer);
}

function poll(req: IncomingMessage, res: ServerResponse, url: string): void {
  const key = req.headers.authorization ?? '';
  const waitS = Number(/[?&]wait=([\d.]+)/.exec(url)?.[1] ?? 25);
  const older = held.get(key);
  if (older) {
    release(key, older);
    answer(older.res, 409, '{"error":{"code":"superseded","message":"a newer poll took over"}}');
  }
  const entry: Held = {
    res,
    timer: setTimeout(() => {
      release(key, entry);
      answer(res, 200, '{"events":[],"cursor":"t0000000000000000","more":false}');
    }, waitS * 1000),
  };
  held.set(key, entry);
  res.once('close', () => release(key, entry));
}

const server = http.createServer({ keepAliveTimeout: 120_000 }, (req, res) => {
  const url = req.url ?? '/';
  if (req.method === 'GET' && (url === '/v1/events' || url.startsWith('/v1/events?'))) return poll(req, res, url);
  if (url === '/metrics') return answer(res, 200, `pollgate_polls_held ${held.size}\n`);
  if (url === '/healthz') return answer(res, 200, '{"status":"ok"}');
  answer(res, 404, '{"error":{"code":"not_found"}}');
});
// A held request is not a slow one; and on a loaded machine the client may take many seconds
// to connect 10,000 sockets before it sends on them.
server.requestTimeout = 0;
server.headersTimeout = 60_000;

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ msg: 'plain poll listening', port: (server.address() as AddressInfo).port })}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});

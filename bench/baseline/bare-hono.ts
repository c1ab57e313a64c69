/**
 * The in-run baseline: the same HTTP stack pollgate uses (@hono/node-server + hono), one POST
 * route that reads and parses the JSON body and answers 201 with a small JSON, doing no other
 * work (no auth, no validation, no storage). pollgate ÷ this is "what the gateway's own work
 * costs" on the same machine at the same moment.
 *
 * POST /v1/events reads the body from the Node request (c.env.incoming), exactly as pollgate's
 * src/http/body.ts does. The idiomatic `await c.req.json()` goes through the adapter's lazy
 * web Request and a web ReadableStream, which on Node 20 costs 2–3× the whole request on this
 * machine (see bench/README.md); a baseline built on it would flatter pollgate.
 * POST /web/v1/events is that idiomatic variant, kept for comparing by hand; no scenario uses it.
 * GET /v1/events serves a stored 1000-event page (PUT /bench/page): the drain bench's ceiling.
 *
 * Prints {"msg":"baseline listening","port":N} once bound (port 0: the OS picks one).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type HttpBindings } from '@hono/node-server';
import { Hono } from 'hono';

const app = new Hono<{ Bindings: HttpBindings }>();
let seq = 0;

function readBody(incoming: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    incoming.on('error', reject);
  });
}

const answer = (body: unknown) => ({ ok: true, seq: ++seq, events: Array.isArray(body) ? body.length : 1 });

app.post('/v1/events', async (c) => {
  const body: unknown = JSON.parse((await readBody(c.env.incoming)).toString('utf8'));
  return c.json(answer(body), 201);
});

app.post('/web/v1/events', async (c) => {
  const body: unknown = await c.req.json();
  return c.json(answer(body), 201);
});

// The drain bench's ceiling: GET /v1/events answers a stored page (one of pollgate's own
// 1000-event pages, byte for byte, stored with PUT /bench/page), doing no other work.
let page = '{"events":[],"cursor":"0000000000000000","more":false}';

app.put('/bench/page', async (c) => {
  page = (await readBody(c.env.incoming)).toString('utf8');
  return c.json({ bytes: Buffer.byteLength(page) });
});

app.get('/v1/events', (c) => c.body(page, 200, { 'content-type': 'application/json' }));

const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, (info: AddressInfo) => {
  process.stdout.write(`${JSON.stringify({ msg: 'baseline listening', port: info.port })}\n`);
}) as Server;

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

/**
 * A real webhook receiver for push tests: a node:http server on 127.0.0.1:0 whose answer to
 * each request is programmable (2xx/5xx, 429 with Retry-After, a 3xx redirect, hanging past
 * the sender's timeout, or a connection reset), and which records every request it gets:
 * method, path, headers, the raw body and when it arrived.
 *
 * Recording happens once the whole body has arrived, before the answer is decided, so a test
 * that waits for `requests.length` to grow sees the attempt even when it hangs or is reset.
 * close() cuts hanging requests, so a test never waits on its own receiver; receiverFor(t)
 * starts one that is closed when the test t ends. verify() checks a recorded request's
 * signature with the `standardwebhooks` library.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { waitUntil } from './wait.ts';

export interface ReceivedRequest {
  /** 1-based arrival number on this receiver. */
  n: number;
  method: string;
  path: string;
  /** Lower-cased names, as node:http gives them. */
  headers: IncomingHttpHeaders;
  body: string;
  /** Date.now() when the request line and headers arrived. */
  at: number;
}

export type Reply =
  /** Answer with this status (default body "ok"), optionally after a real delay. */
  | { status: number; headers?: Record<string, string>; body?: string; delayMs?: number }
  /** Never answer (until the receiver closes). */
  | { hang: true }
  /** Destroy the socket without answering. */
  | { reset: true };

export type Behaviour = (req: ReceivedRequest) => Reply;

export const ok: Behaviour = () => ({ status: 200 });

export interface Receiver {
  readonly port: number;
  /** http://127.0.0.1:<port>/ */
  readonly url: string;
  readonly requests: ReceivedRequest[];
  /** Replaces how later requests are answered. */
  behave(fn: Behaviour): void;
  /** Bodies parsed as JSON, in arrival order. */
  envelopes(): any[];
  /** Waits (real time, bounded) until at least n requests have arrived. */
  waitForCount(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(initial: Behaviour = ok): Promise<Receiver> {
  let behaviour = initial;
  const requests: ReceivedRequest[] = [];
  const hanging = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();

  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    const at = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const record: ReceivedRequest = {
        n: requests.length + 1,
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at,
      };
      requests.push(record);
      let reply: Reply;
      try {
        reply = behaviour(record);
      } catch {
        reply = { status: 500 };
      }
      if ('reset' in reply) {
        req.socket.destroy();
        return;
      }
      if ('hang' in reply) {
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      }
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
        res.end(reply.body ?? 'ok');
      };
      if (reply.delayMs) {
        const t = setTimeout(() => {
          timers.delete(t);
          send();
        }, reply.delayMs);
        timers.add(t);
      } else send();
    });
  });
  // Longer than the sender's idle keep-alive so the server never closes a socket the sender
  // is about to reuse (which would look like a reset that the test did not ask for).
  server.keepAliveTimeout = 60_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    requests,
    behave(fn) {
      behaviour = fn;
    },
    envelopes: () => requests.map((r) => JSON.parse(r.body)),
    async waitForCount(n, timeoutMs = 5_000) {
      await waitUntil(() => requests.length >= n, timeoutMs, () => `receiver on ${port}: ${requests.length} of ${n} requests`);
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A receiver for one test, closed when the test ends. */
export async function receiverFor(t: TestContext, behaviour: Behaviour = ok): Promise<Receiver> {
  const r = await startReceiver(behaviour);
  t.after(() => r.close());
  return r;
}

/** Verifies a request's signature with the standardwebhooks library; answers the payload. */
export function verify(secret: string, req: ReceivedRequest): unknown {
  return new Webhook(secret).verify(req.body, {
    'webhook-id': String(req.headers['webhook-id']),
    'webhook-timestamp': String(req.headers['webhook-timestamp']),
    'webhook-signature': String(req.headers['webhook-signature']),
  });
}

/** A loopback port nothing listens on: bind a server, note its port, close it. */
export async function unusedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

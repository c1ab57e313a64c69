/**
 * Reading the Node request behind Hono's context without building a web Request.
 * @hono/node-server creates the full Request (a Headers object, an AbortController, a body
 * stream) the first time `.headers` or `.signal` is touched, which costs more than answering a
 * whole long-poll. These read the IncomingMessage and ServerResponse directly, and fall back
 * to the web API when pollgate runs on another adapter.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'hono';

type NodeEnv = { incoming?: IncomingMessage; outgoing?: ServerResponse } | undefined;

/** A request header (name in lower case). */
export function header(c: Context, name: string): string | undefined {
  const incoming = (c.env as NodeEnv)?.incoming;
  if (!incoming) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Sets a header on the answer, whatever the route answers. On Node it goes on the
 * ServerResponse (a plain object): Hono's c.header() before the answer exists makes a web
 * Headers object and sends every answer down its slow path.
 */
export function setResponseHeader(c: Context, name: string, value: string): void {
  const outgoing = (c.env as NodeEnv)?.outgoing;
  if (outgoing) outgoing.setHeader(name, value);
  else c.header(name, value);
}

/** A signal that aborts if the client goes away before its answer is complete. */
export function clientGone(c: Context): AbortSignal {
  const outgoing = (c.env as NodeEnv)?.outgoing;
  if (!outgoing) return c.req.raw.signal;
  const controller = new AbortController();
  if (outgoing.destroyed) controller.abort();
  else outgoing.once('close', () => {
    if (!outgoing.writableFinished) controller.abort();
  });
  return controller.signal;
}

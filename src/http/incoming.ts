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

/**
 * A sender of a 200 JSON answer straight to the Node response, for a long-poll woken by a
 * commit: the answer goes out inside the wake-up loop. The route then returns
 * RESPONSE_ALREADY_SENT, which tells the Node adapter to write nothing more (nothing may
 * change that shared marker's headers). Null when not on Node: answer the usual way.
 */
export function sendJsonNow(c: Context): ((body: string) => void) | null {
  const outgoing = (c.env as NodeEnv)?.outgoing;
  if (!outgoing) return null;
  return (body) => {
    if (outgoing.headersSent || outgoing.destroyed) return; // the client is gone: nothing to send
    try {
      outgoing.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      outgoing.end(body);
    } catch (error) {
      // Half an answer cannot be finished: cut the connection (nothing was acked, the client
      // polls again). Nothing sent yet: let the route answer the usual way.
      if (!outgoing.headersSent) throw error;
      outgoing.destroy();
    }
  };
}

export { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';

/**
 * Runs fn once the answer has been handed to the OS or its connection closed, whichever comes
 * first (a client that does not read keeps a large answer in this process until then); at
 * once when not on Node. Every response ends in one of the two, so fn always runs.
 */
export function whenSent(c: Context): (fn: () => void) => void {
  const outgoing = (c.env as NodeEnv)?.outgoing;
  if (!outgoing) return (fn) => fn();
  return (fn) => {
    if (outgoing.writableFinished || outgoing.destroyed) return fn();
    outgoing.once('finish', fn);
    outgoing.once('close', fn);
  };
}

/**
 * Subscribes to the client going away before its answer is complete; returns the
 * unsubscribe. On Node it listens on the ServerResponse; elsewhere on the request's signal.
 */
export function onClientGone(c: Context): (gone: () => void) => () => void {
  const outgoing = (c.env as NodeEnv)?.outgoing;
  if (!outgoing) {
    const signal = c.req.raw.signal;
    return (gone) => {
      if (signal.aborted) {
        queueMicrotask(gone);
        return () => {};
      }
      signal.addEventListener('abort', gone, { once: true });
      return () => signal.removeEventListener('abort', gone);
    };
  }
  return (gone) => {
    if (outgoing.destroyed && !outgoing.writableFinished) {
      queueMicrotask(gone);
      return () => {};
    }
    const onClose = () => {
      if (!outgoing.writableFinished) gone();
    };
    outgoing.once('close', onClose);
    return () => outgoing.off('close', onClose);
  };
}

/**
 * Reading the Node request behind Hono's context without building a web Request.
 * @hono/node-server creates the full Request (a Headers object, an AbortController, a body
 * stream) the first time `.headers` or `.signal` is touched, which costs more than answering a
 * whole long-poll. These read the IncomingMessage and ServerResponse directly, and fall back
 * to the web API when pollgate runs on another adapter.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Context } from 'hono';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';

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

export { RESPONSE_ALREADY_SENT };

/** The Node response behind the context; undefined on another adapter. */
export function nodeResponse(c: Context): ServerResponse | undefined {
  return (c.env as NodeEnv)?.outgoing;
}

/**
 * Writes a JSON answer straight to the Node response, for an answer that comes after the
 * route returned (answerLater). Never throws: it runs inside the hub's wake-up loop, where a
 * throw would cost the other polls their answers. An answer that cannot be written cuts the
 * connection (nothing was acked by it; the client polls again).
 */
export function writeJsonNow(outgoing: ServerResponse, status: number, body: string, headers?: Record<string, string>): void {
  if (outgoing.headersSent || outgoing.destroyed) return; // the client is gone: nothing to send
  try {
    outgoing.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    outgoing.end(body);
  } catch {
    outgoing.destroy();
  }
}

/** Responses answered later: a WeakSet rather than a mark on the response, which would grow its property store. */
const answeredLater = new WeakSet<ServerResponse>();

/**
 * The route has handed its answer to something that writes it later on the Node response
 * (a held long-poll: writeJsonNow from the hub's callback), so the request holds no Hono
 * context, middleware frames or promises while it waits, only the Node request and response.
 * Returns what the route returns: RESPONSE_ALREADY_SENT, which tells the adapter to write
 * nothing. Node only (check nodeResponse first).
 */
export function answerLater(c: Context): Response {
  answeredLater.add(nodeResponse(c)!);
  return RESPONSE_ALREADY_SENT;
}

/**
 * For the request line: when the route answers later (answerLater), calls fn with the status
 * sent once the response is done (or the client gone) and answers true; false when the
 * route's answer is the one Hono holds.
 */
export function whenAnsweredLater(c: Context, fn: (status: number) => void): boolean {
  const outgoing = nodeResponse(c);
  if (!outgoing || !answeredLater.has(outgoing)) return false;
  if (outgoing.writableFinished || outgoing.destroyed) fn(outgoing.statusCode);
  else outgoing.once('close', () => fn(outgoing.statusCode));
  return true;
}

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

/**
 * What every request goes through before its route, in one middleware layer (each layer is
 * one more suspended frame per held long-poll, in memory and on the way out):
 *
 * 1. A request id (the caller's X-Request-Id when it is sane, else a new one), echoed in the
 *    answer, and one structured log line per request: method, path, status, duration. Never
 *    headers, query strings or bodies, which may carry keys, cursors or data.
 * 2. While shutting down, everything but /healthz is refused with 503 and Connection: close.
 * 3. Calls under /v1/ and /metrics are authenticated (auth.ts); the routes check the scope.
 */
import type { Context, MiddlewareHandler } from 'hono';
import { nanoid } from 'nanoid';
import type { Logger } from 'pino';
import { ApiError } from '../errors.ts';
import { requestLogger } from '../log.ts';
import type { Store } from '../store/store.ts';
import { authenticate, type Env } from './auth.ts';
import { header, setResponseHeader, whenAnsweredLater } from './incoming.ts';

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function edge(opts: { logger: Logger; store: Store; adminKeyHash: Buffer; isClosing: () => boolean }): MiddlewareHandler<Env> {
  const { logger } = opts;
  // The request line's fields are fixed and never secret: it skips the masking (log.ts).
  const lines = requestLogger(logger);
  return (c, next) => {
    const given = header(c, 'x-request-id');
    const id = given !== undefined && SANE_ID.test(given) ? given : nanoid(12);
    setResponseHeader(c, 'x-request-id', id);
    if (!logger.isLevelEnabled('info')) return guarded(c, next);
    const started = performance.now();
    return guarded(c, next).then(
      () => {
        // A held poll is answered after its route returned (incoming.ts answerLater): logged then.
        if (!whenAnsweredLater(c, laterLine(lines, id, started, c.req.method, c.req.path))) logRequest(lines, c, id, started, c.res.status);
      },
      (error: unknown) => {
        // Refused here (401, 503): onError answers after this layer, so the status comes from the error.
        logRequest(lines, c, id, started, error instanceof ApiError ? error.status : 500);
        throw error;
      },
    );
  };

  function guarded(c: Parameters<MiddlewareHandler<Env>>[0], next: () => Promise<void>): Promise<void> {
    const path = c.req.path;
    if (opts.isClosing() && path !== '/healthz') {
      c.header('connection', 'close');
      return Promise.reject(new ApiError('shutting_down', 'the server is shutting down; retry shortly'));
    }
    if (path.startsWith('/v1/') || path === '/metrics') {
      return authenticate(c, opts.store, opts.adminKeyHash).then(next);
    }
    return next();
  }
}

function logRequest(lines: Logger, c: Context, id: string, started: number, status: number): void {
  lines.info({ req_id: id, method: c.req.method, path: c.req.path, status, ms: Math.round((performance.now() - started) * 10) / 10 }, 'request');
}

/** The line of a request answered later; made out here so it keeps no request context alive. */
function laterLine(lines: Logger, id: string, started: number, method: string, path: string): (status: number) => void {
  return (status) => lines.info({ req_id: id, method, path, status, ms: Math.round((performance.now() - started) * 10) / 10 }, 'request');
}

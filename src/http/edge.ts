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
import type { MiddlewareHandler } from 'hono';
import { nanoid } from 'nanoid';
import type { Logger } from 'pino';
import { ApiError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { authenticate, type Env } from './auth.ts';
import { header, setResponseHeader } from './incoming.ts';

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function edge(opts: { logger: Logger; store: Store; adminKeyHash: Buffer; isClosing: () => boolean }): MiddlewareHandler<Env> {
  const { logger } = opts;
  return (c, next) => {
    const given = header(c, 'x-request-id');
    const id = given !== undefined && SANE_ID.test(given) ? given : nanoid(12);
    setResponseHeader(c, 'x-request-id', id);
    if (!logger.isLevelEnabled('info')) return guarded(c, next);
    const started = performance.now();
    const log = (status: number) =>
      logger.info(
        { req_id: id, method: c.req.method, path: c.req.path, status, ms: Math.round((performance.now() - started) * 10) / 10 },
        'request',
      );
    return guarded(c, next).then(
      () => log(c.res.status),
      (error: unknown) => {
        // Refused here (401, 503): onError answers after this layer, so the status comes from the error.
        log(error instanceof ApiError ? error.status : 500);
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

/**
 * One structured log line per request, with a request id (the caller's X-Request-Id when it is
 * sane, else a new one) echoed in the response. Only method, path, status and duration are
 * logged: never headers, query strings or bodies, which may carry keys, cursors or data.
 */
import type { MiddlewareHandler } from 'hono';
import { nanoid } from 'nanoid';
import type { Logger } from 'pino';
import { header } from './incoming.ts';

const SANE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestLog(logger: Logger): MiddlewareHandler {
  return async (c, next) => {
    const given = header(c, 'x-request-id');
    const id = given !== undefined && SANE_ID.test(given) ? given : nanoid(12);
    c.header('x-request-id', id);
    if (!logger.isLevelEnabled('info')) return next();
    const started = performance.now();
    await next();
    logger.info(
      { req_id: id, method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round((performance.now() - started) * 10) / 10 },
      'request',
    );
  };
}

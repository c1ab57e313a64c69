/**
 * The HTTP edge: one Hono app, routes split by concern, one error handler that turns every
 * failure into {"error":{"code","message"}} with its status. Nothing here builds SQL.
 */
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ApiError } from '../errors.ts';
import type { Services } from '../services.ts';
import type { WriteHealth } from '../store/write-health.ts';
import { requireAdmin, type Env } from './auth.ts';
import { edge } from './edge.ts';
import { consumerRoutes } from './consumer-api.ts';
import { consumerAdminRoutes } from './consumers.ts';
import { openApiRoutes } from './openapi.ts';
import { opsRoutes } from './ops.ts';
import { opsSeriesRoutes } from './ops-series.ts';
import { publishRoutes } from './publish.ts';
import { tenantEventRoutes } from './tenant-events.ts';
import { uiRoutes } from './ui.ts';
import { webhookRoutes } from './webhooks.ts';

export function createApp(s: Services, opts: { isClosing: () => boolean; writes?: WriteHealth }): Hono<Env> {
  const app = new Hono<Env>();

  app.use('*', edge({ logger: s.logger, store: s.store, adminKeyHash: s.adminKeyHash, isClosing: opts.isClosing }));

  app.route('/', opsRoutes(s, opts.isClosing, opts.writes));
  app.route('/', openApiRoutes(s));
  app.route('/', uiRoutes());
  app.get('/metrics', async (c) => {
    requireAdmin(c);
    return c.body(await s.metrics.registry.metrics(), 200, { 'content-type': s.metrics.registry.contentType });
  });
  app.route('/', publishRoutes(s));
  app.route('/', consumerRoutes(s));
  app.route('/', consumerAdminRoutes(s));
  app.route('/', webhookRoutes(s));
  app.route('/', tenantEventRoutes(s));
  app.route('/', opsSeriesRoutes(s, opts.isClosing));

  app.notFound((c) => {
    const e = new ApiError('not_found', `no route for ${c.req.method} ${c.req.path}`);
    return c.json(e.toJSON(), 404);
  });

  app.onError((error, c) => {
    if (error instanceof ApiError) {
      // A 503 is temporary (database unreachable, shutting down): say when to come back.
      if (error.status === 503) c.header('Retry-After', '1');
      return c.json(error.toJSON(), error.status);
    }
    if (error instanceof HTTPException) {
      const e = new ApiError('invalid_request', error.message || 'the request could not be processed');
      return c.json(e.toJSON(), error.status);
    }
    if (opts.isClosing()) {
      const e = new ApiError('shutting_down', 'the server is shutting down; retry shortly');
      c.header('Retry-After', '1');
      return c.json(e.toJSON(), 503);
    }
    s.logger.error({ err: error, method: c.req.method, path: c.req.path }, 'unhandled error');
    return c.json(new ApiError('internal', 'an internal error occurred; it has been logged').toJSON(), 500);
  });

  return app;
}

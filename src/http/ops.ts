/**
 * Health endpoints (no key): /healthz says the process is alive, /readyz that the database
 * answers, takes writes, and the gateway is not shutting down.
 *
 * /readyz says nothing about the data (no volume, no head): anyone can call it. Event counts
 * are in /metrics, behind the admin key.
 */
import { Hono } from 'hono';
import type { Services } from '../services.ts';
import type { WriteHealth } from '../store/write-health.ts';

export function opsRoutes(s: Services, isClosing: () => boolean, writes: WriteHealth | undefined): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    if (isClosing()) return c.json({ status: 'shutting_down' }, 503);
    try {
      await s.store.ping();
    } catch {
      c.header('Retry-After', '1');
      return c.json({ status: 'database_unavailable' }, 503);
    }
    const failing = await writes?.check();
    if (failing) {
      c.header('Retry-After', '1');
      return c.json({ status: 'writes_failing', reason: failing.reason, since: new Date(failing.since).toISOString() }, 503);
    }
    return c.json({ status: 'ready', engine: s.store.engine, node: s.store.nodeId });
  });
  return app;
}

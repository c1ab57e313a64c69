/**
 * Health endpoints (no key): /healthz says the process is alive, /readyz that the database
 * answers and the gateway is not shutting down.
 */
import { Hono } from 'hono';
import type { Services } from '../services.ts';

export function opsRoutes(s: Services, isClosing: () => boolean): Hono {
  const app = new Hono();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    if (isClosing()) return c.json({ status: 'shutting_down' }, 503);
    let appended: number;
    try {
      appended = await s.store.appendedTotal();
    } catch {
      c.header('Retry-After', '1');
      return c.json({ status: 'database_unavailable' }, 503);
    }
    return c.json({ status: 'ready', engine: s.store.engine, node: s.store.nodeId, appended });
  });
  return app;
}

/**
 * The push bridge's HTTP surface (admin key): a consumer's webhook, its attempt log, and the
 * global bridge toggle.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { consumerView, findConsumer } from '../consumers/consumers.ts';
import { invalidField } from '../errors.ts';
import { patchWebhook, removeWebhook, setWebhook, webhookView } from '../push/webhooks.ts';
import { configProblem } from '../push/headers.ts';
import { secretProblem } from '../push/signing.ts';
import type { Services } from '../services.ts';
import { encodeCursor } from '../store/cursor.ts';
import { ApiError } from '../errors.ts';
import { requireAdmin, type Env } from './auth.ts';
import { readJsonBody } from './body.ts';
import { parseInput } from './validate.ts';

export const MAX_TIMEOUT_MS = 30_000;

const urlSchema = z
  .string()
  .max(2048, 'must be at most 2048 characters')
  .refine((text) => {
    try {
      const u = new URL(text);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
    } catch {
      return false;
    }
  }, 'must be an absolute http:// or https:// URL')
  .refine((text) => {
    const u = URL.canParse(text) ? new URL(text) : null;
    return !u || (u.username === '' && u.password === '');
  }, 'must not carry credentials; send them in `headers` instead');

/** Custom headers: the rules live in push/headers.ts; a problem names the header, e.g. headers.X-Foo. */
const headersSchema = z.record(z.string(), z.string({ error: 'header values must be strings' })).superRefine((headers, ctx) => {
  const found = configProblem(headers);
  if (found) ctx.addIssue({ code: 'custom', message: found.problem, path: found.name === null ? [] : [found.name] });
});

export const webhookSchema = z.strictObject({
  url: urlSchema,
  secret: z.string().refine((s) => secretProblem(s) === null, { error: (i) => secretProblem(String(i.input)) ?? 'invalid secret' }).optional(),
  headers: headersSchema.optional(),
  method: z.enum(['POST', 'PUT', 'PATCH'], { error: 'must be POST, PUT or PATCH' }).optional(),
  timeout_ms: z
    .number()
    .int('must be an integer number of milliseconds')
    .min(1, 'must be at least 1')
    .max(MAX_TIMEOUT_MS, `must be at most ${MAX_TIMEOUT_MS} (30 s)`)
    .optional(),
  enabled: z.boolean().optional(),
});

/** PATCH: the fields to change; the rest stay as they are. */
export const webhookPatchSchema = webhookSchema.partial();

export const bridgeSchema = z.strictObject({ enabled: z.boolean({ error: 'must be true or false' }) });

export function webhookRoutes(s: Services): Hono<Env> {
  const app = new Hono<Env>();
  const adminOnly: MiddlewareHandler<Env> = async (c, next) => {
    requireAdmin(c);
    await next();
  };
  app.use('/v1/bridge', adminOnly);
  app.use('/v1/consumers/:id/webhook', adminOnly);
  app.use('/v1/consumers/:id/deliveries', adminOnly);

  app.put('/v1/consumers/:id/webhook', async (c) => {
    const body = parseInput(webhookSchema, refuseProtoKeys(await readJsonBody(c, 'config')));
    const { row, created, secret } = await setWebhook(s, c.req.param('id'), body);
    return c.json({ ...webhookView(row), ...(secret ? { secret } : {}) }, created ? 201 : 200);
  });

  app.patch('/v1/consumers/:id/webhook', async (c) => {
    const body = parseInput(webhookPatchSchema, refuseProtoKeys(await readJsonBody(c, 'config')));
    const { row, secret } = await patchWebhook(s, c.req.param('id'), body);
    return c.json({ ...webhookView(row), ...(secret ? { secret } : {}) });
  });

  app.get('/v1/consumers/:id/webhook', async (c) => {
    const id = c.req.param('id');
    await findConsumer(s, id);
    const row = await s.store.getWebhook(id);
    if (!row) throw new ApiError('not_found', 'this consumer has no webhook');
    return c.json(webhookView(row));
  });

  app.delete('/v1/consumers/:id/webhook', async (c) => {
    const id = c.req.param('id');
    await findConsumer(s, id);
    await removeWebhook(s, id);
    return c.json(await consumerView(s, await findConsumer(s, id)));
  });

  app.get('/v1/consumers/:id/deliveries', async (c) => {
    const id = c.req.param('id');
    await findConsumer(s, id);
    const q = c.req.query();
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalidField('limit', 'must be an integer from 1 to 1000');
    const before = q.before === undefined ? undefined : Number(q.before);
    if (before !== undefined && !Number.isSafeInteger(before)) throw invalidField('before', 'must be a delivery id');
    const rows = await s.store.listDeliveries(id, { limit: limit + 1, beforeId: before });
    const page = rows.slice(0, limit);
    return c.json({
      deliveries: page.map((d) => ({
        id: d.id,
        event_id: d.event_id,
        cursor: encodeCursor(d.pos),
        attempt: d.attempt,
        status: d.status,
        error: d.error,
        duration_ms: d.duration_ms,
        at: new Date(d.at).toISOString(),
        next_attempt_at: d.next_attempt_at === null ? null : new Date(d.next_attempt_at).toISOString(),
      })),
      next: rows.length > limit ? page[page.length - 1]!.id : null,
    });
  });

  app.get('/v1/bridge', async (c) => c.json(await bridgeView(s)));

  app.put('/v1/bridge', async (c) => {
    const body = parseInput(bridgeSchema, await readJsonBody(c, 'small'));
    await s.bridge.setEnabled(body.enabled);
    return c.json(await bridgeView(s));
  });

  return app;
}

/** Cluster-wide: the toggle as stored, and every consumer in push mode (not only this node's). */
async function bridgeView(s: Services) {
  const [enabled, pushing] = await Promise.all([s.bridge.enabledNow(), s.store.listEnabledWebhooks()]);
  return { enabled, consumers_in_push_mode: pushing.length };
}

/**
 * JSON.parse keeps a "__proto__" key as an own property, and the objects zod builds then drop
 * it without a word (a header that silently never arrives): refuse it, naming where it is.
 */
function refuseProtoKeys(body: unknown): unknown {
  const stack: Array<{ value: unknown; path: string }> = [{ value: body, path: '' }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    for (const key of Object.keys(value)) {
      const at = Array.isArray(value) ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;
      if (key === '__proto__') throw invalidField(at, 'is not a name pollgate accepts');
      stack.push({ value: (value as Record<string, unknown>)[key], path: at });
    }
  }
  return body;
}

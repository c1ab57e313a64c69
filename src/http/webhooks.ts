/**
 * The push bridge's HTTP surface (admin key): a consumer's webhook, its attempt log, and the
 * global bridge toggle.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { consumerView, findConsumer } from '../consumers/consumers.ts';
import { invalidField } from '../errors.ts';
import { patchWebhook, removeWebhook, setWebhook, webhookView } from '../push/webhooks.ts';
import { secretProblem } from '../push/signing.ts';
import type { Services } from '../services.ts';
import { encodeCursor } from '../store/cursor.ts';
import { ApiError } from '../errors.ts';
import { requireAdmin, type Env } from './auth.ts';
import { readJsonBody } from './body.ts';
import { parseInput } from './validate.ts';

export const MAX_TIMEOUT_MS = 30_000;
/** Headers pollgate sets itself, or that would break the request if overridden. */
const RESERVED_HEADERS = new Set([
  'webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'content-length',
  'host', 'connection', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', 'user-agent',
]);

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

const headersSchema = z
  .record(
    z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/, 'header names must be HTTP tokens'),
    z.string().max(4096, 'header values must be at most 4096 characters').regex(/^[^\r\n\0]*$/, 'header values must not contain line breaks'),
  )
  .refine((h) => Object.keys(h).length <= 32, 'at most 32 headers')
  .refine((h) => Object.keys(h).every((k) => !RESERVED_HEADERS.has(k.toLowerCase())), {
    message: `must not set ${[...RESERVED_HEADERS].join(', ')}`,
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
    const body = parseInput(webhookSchema, await readJsonBody(c, s.config.maxBodyBytes));
    const { row, created, secret } = await setWebhook(s, c.req.param('id'), body);
    return c.json({ ...webhookView(row), ...(secret ? { secret } : {}) }, created ? 201 : 200);
  });

  app.patch('/v1/consumers/:id/webhook', async (c) => {
    const body = parseInput(webhookPatchSchema, await readJsonBody(c, s.config.maxBodyBytes));
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
    const body = parseInput(bridgeSchema, await readJsonBody(c, s.config.maxBodyBytes));
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

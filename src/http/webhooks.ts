/**
 * The push bridge's HTTP surface (admin key): a consumer's webhook, its attempt log, and the
 * global bridge toggle.
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { consumerView, findConsumer } from '../consumers/consumers.ts';
import { invalidField } from '../errors.ts';
import { patchWebhook, removeWebhook, setWebhook, urlForCheck, webhookView } from '../push/webhooks.ts';
import { configProblem, MAX_VALUE_LENGTH } from '../push/headers.ts';
import { FORMATS, METHODS, urlTemplateProblem } from '../push/shape.ts';
import { previewWebhook, testWebhook, type TryInput } from '../push/preview.ts';
import { TYPE } from './publish.ts';
import { parseDuration } from '../config.ts';
import { secretProblem } from '../push/signing.ts';
import type { Services } from '../services.ts';
import { encodeCursor } from '../store/cursor.ts';
import { ApiError } from '../errors.ts';
import { requireAdmin, type Env } from './auth.ts';
import { readJsonBody } from './body.ts';
import { parseInput } from './validate.ts';

export const MAX_TIMEOUT_MS = 30_000;

/** An absolute http(s) URL, or a template whose tags stand only in its path and query. */
const urlSchema = z
  .string()
  .max(2048, 'must be at most 2048 characters')
  .superRefine((text, ctx) => {
    const problem = urlTemplateProblem(text);
    if (problem) return void ctx.addIssue({ code: 'custom', message: problem.message });
    const sample = urlForCheck(text);
    const u = URL.canParse(sample) ? new URL(sample) : null;
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.hostname === '') {
      return void ctx.addIssue({ code: 'custom', message: 'must be an absolute http:// or https:// URL' });
    }
    if (u.username !== '' || u.password !== '') {
      ctx.addIssue({ code: 'custom', message: 'must not carry credentials; use `auth` (basic, bearer or api_key) instead' });
    }
  });

/** Custom headers: the rules live in push/headers.ts; a problem names the header, e.g. headers.X-Foo. */
const headersSchema = z.record(z.string(), z.string({ error: 'header values must be strings' })).superRefine((headers, ctx) => {
  const found = configProblem(headers);
  if (found) ctx.addIssue({ code: 'custom', message: found.problem, path: found.name === null ? [] : [found.name] });
});

/** A duration as the environment writes them ("30m", "24h"), in ms. */
const durationSchema = z.string({ error: 'must be a duration such as "30s", "30m" or "24h"' }).transform((text, ctx) => {
  try {
    const ms = parseDuration(text);
    if (ms > 0) return ms;
    ctx.addIssue({ code: 'custom', message: 'must be longer than 0' });
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
  return z.NEVER;
});

/** A value sent as (part of) a header: what HTTP/1.1 carries. */
const headerValue = (what: string) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .max(MAX_VALUE_LENGTH, `${what} must be at most ${MAX_VALUE_LENGTH} characters`)
    .refine((v) => configProblem({ 'x-check': v }) === null, {
      error: (i) => configProblem({ 'x-check': String(i.input) })?.problem ?? 'cannot be sent in a header',
    });

/** A header name pollgate may set for a credential. */
const headerName = z.string().refine((name) => configProblem({ [name]: 'x' }) === null, {
  error: (i) => configProblem({ [String(i.input)]: 'x' })?.problem ?? 'is not a header name pollgate may set',
});

const authSchema = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('basic'),
      username: headerValue('username').refine((u) => !u.includes(':'), 'must not contain ":" (RFC 7617)'),
      password: headerValue('password'),
    }),
    z.strictObject({ type: z.literal('bearer'), token: headerValue('token') }),
    z.strictObject({
      type: z.literal('api_key'),
      in: z.enum(['header', 'query'], { error: 'must be "header" or "query"' }),
      name: z.string().min(1, 'must not be empty').max(100, 'must be at most 100 characters'),
      value: headerValue('value'),
    }).superRefine((auth, ctx) => {
      if (auth.in !== 'header') return;
      const problem = configProblem({ [auth.name]: auth.value });
      if (problem) ctx.addIssue({ code: 'custom', message: problem.problem, path: ['name'] });
    }),
  ],
  { error: 'must have type "basic", "bearer" or "api_key"' },
);

export const webhookSchema = z.strictObject({
  url: urlSchema,
  secret: z.string().refine((s) => secretProblem(s) === null, { error: (i) => secretProblem(String(i.input)) ?? 'invalid secret' }).optional(),
  headers: headersSchema.optional(),
  method: z.enum(METHODS, { error: `must be one of ${METHODS.join(', ')}` }).optional(),
  timeout_ms: z
    .number()
    .int('must be an integer number of milliseconds')
    .min(1, 'must be at least 1')
    .max(MAX_TIMEOUT_MS, `must be at most ${MAX_TIMEOUT_MS} (30 s)`)
    .optional(),
  enabled: z.boolean().optional(),
  format: z.enum(FORMATS, { error: `must be one of ${FORMATS.join(', ')}` }).nullable().optional(),
  body: z.string().nullable().optional(),
  auth: authSchema.nullable().optional(),
  secret_header: z.strictObject({ name: headerName, value: headerValue('value') }).nullable().optional(),
  signing: z.boolean().optional(),
  missing: z.enum(['empty', 'fail'], { error: 'must be "empty" or "fail"' }).optional(),
  retry: z
    .strictObject({
      schedule: z.array(durationSchema).min(1, 'must list at least one delay').max(32, 'at most 32 delays').optional(),
      max_age: durationSchema.optional(),
    })
    .nullable()
    .optional(),
  rate_limit: z.number().positive('must be more than 0').max(10_000, 'must be at most 10000 per second').nullable().optional(),
  alerts: z
    .strictObject({
      enabled: z.boolean().optional(),
      failures: z.number().int('must be an integer').min(1, 'must be at least 1').max(100, 'must be at most 100').optional(),
      window: durationSchema.optional(),
    })
    .nullable()
    .optional(),
});

/** The API's names (durations as text) to the stored ones (ms). */
type WebhookBody = z.output<typeof webhookSchema>;
function toInput<T extends { [K in keyof WebhookBody]?: WebhookBody[K] | undefined }>(body: T) {
  const { retry, alerts, ...rest } = body;
  return {
    ...rest,
    ...(retry !== undefined ? { retry: retry && { schedule_ms: retry.schedule, max_age_ms: retry.max_age } } : {}),
    ...(alerts !== undefined ? { alerts: alerts && { enabled: alerts.enabled, failures: alerts.failures, window_ms: alerts.window } } : {}),
  };
}

/** PATCH: the fields to change; the rest stay as they are. */
export const webhookPatchSchema = webhookSchema.partial();

/** Preview and test: which event (a cursor, or a sample), and unsaved changes to try. */
export const trySchema = z.strictObject({
  cursor: z.string().max(40).optional(),
  event: z
    .strictObject({
      type: z.string().max(200).regex(TYPE, 'must be dot-separated segments of A-Z a-z 0-9 _ - (e.g. "ticket.created")').optional(),
      data: z.unknown().optional(),
    })
    .optional(),
  webhook: webhookPatchSchema.optional(),
});

export const bridgeSchema = z.strictObject({ enabled: z.boolean({ error: 'must be true or false' }) });

export function webhookRoutes(s: Services): Hono<Env> {
  const app = new Hono<Env>();
  const adminOnly: MiddlewareHandler<Env> = async (c, next) => {
    requireAdmin(c);
    await next();
  };
  app.use('/v1/bridge', adminOnly);
  app.use('/v1/consumers/:id/webhook', adminOnly);
  app.use('/v1/consumers/:id/webhook/*', adminOnly);
  app.use('/v1/consumers/:id/deliveries', adminOnly);

  app.put('/v1/consumers/:id/webhook', async (c) => {
    const body = parseInput(webhookSchema, refuseProtoKeys(await readJsonBody(c, 'config')));
    const { row, created, secret } = await setWebhook(s, c.req.param('id'), toInput(body));
    return c.json({ ...webhookView(row), ...(secret ? { secret } : {}) }, created ? 201 : 200);
  });

  app.patch('/v1/consumers/:id/webhook', async (c) => {
    const body = parseInput(webhookPatchSchema, refuseProtoKeys(await readJsonBody(c, 'config')));
    const { row, secret } = await patchWebhook(s, c.req.param('id'), toInput(body));
    return c.json({ ...webhookView(row), ...(secret ? { secret } : {}) });
  });

  app.post('/v1/consumers/:id/webhook/preview', async (c) => {
    const body = parseInput(trySchema, refuseProtoKeys(await readJsonBody(c, 'config')));
    return c.json(await previewWebhook(s, c.req.param('id'), tryInput(body)));
  });

  app.post('/v1/consumers/:id/webhook/test', async (c) => {
    const body = parseInput(trySchema, refuseProtoKeys(await readJsonBody(c, 'config')));
    return c.json(await testWebhook(s, c.req.param('id'), tryInput(body)));
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
        response: d.response,
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

function tryInput(body: z.output<typeof trySchema>): TryInput {
  return {
    cursor: body.cursor,
    event: body.event,
    webhook: body.webhook ? (toInput(body.webhook) as TryInput['webhook']) : undefined,
  };
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

/**
 * Consumer management (admin key): /v1/consumers and /v1/consumers/:id/{seek,key}.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import {
  consumerView,
  createConsumer,
  deleteConsumer,
  findConsumer,
  rotateKey,
  seekConsumer,
  updateConsumer,
} from '../consumers/consumers.ts';
import { positionSchema } from '../consumers/positions.ts';
import { ApiError, invalidField } from '../errors.ts';
import { FilterError, parseFilter, type Filter } from '../filter/filter.ts';
import type { Services } from '../services.ts';
import { requireAdmin, type Env } from './auth.ts';
import { readJsonBody } from './body.ts';
import { tenantSchema } from './publish.ts';
import { parseInput } from './validate.ts';

const nameSchema = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : -')
  .nullable();

export const createSchema = z.strictObject({
  tenant: tenantSchema,
  name: nameSchema.optional(),
  filter: z.unknown().optional(),
  start: positionSchema.optional(),
});

export const patchSchema = z.strictObject({
  name: nameSchema.optional(),
  filter: z.unknown().optional(),
});

export const seekSchema = z.strictObject({ to: positionSchema });

const PAGE_MAX = 1000;

/** Validates a filter, answering 400 invalid_filter with a message that names the problem. */
function filterOf(input: unknown): Filter | null {
  try {
    return parseFilter(input);
  } catch (error) {
    if (error instanceof FilterError) {
      const message = error.path === 'filter' ? error.message : `filter.${error.message}`;
      throw new ApiError('invalid_filter', message, { field: error.path });
    }
    throw error;
  }
}

export function consumerAdminRoutes(s: Services): Hono<Env> {
  const app = new Hono<Env>();
  app.use('/v1/consumers/*', async (c, next) => {
    requireAdmin(c);
    await next();
  });
  app.use('/v1/consumers', async (c, next) => {
    requireAdmin(c);
    await next();
  });

  app.post('/v1/consumers', async (c) => {
    const body = parseInput(createSchema, await readJsonBody(c, 'config'));
    const { row, key } = await createConsumer(s, {
      tenant: body.tenant,
      name: body.name ?? null,
      filter: filterOf(body.filter),
      start: body.start ?? 'latest',
    });
    return c.json({ ...(await consumerView(s, row)), key }, 201);
  });

  app.get('/v1/consumers', async (c) => {
    const q = c.req.query();
    const tenant = q.tenant === undefined ? undefined : parseInput(tenantSchema, q.tenant, 'tenant');
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > PAGE_MAX) {
      throw invalidField('limit', `must be an integer from 1 to ${PAGE_MAX}`);
    }
    const rows = await s.store.listConsumers({ tenant, afterId: q.after, limit: limit + 1 });
    const page = rows.slice(0, limit);
    return c.json({
      consumers: await Promise.all(page.map((r) => consumerView(s, r))),
      next: rows.length > limit ? page[page.length - 1]!.id : null,
    });
  });

  app.get('/v1/consumers/:id', async (c) => c.json(await consumerView(s, await findConsumer(s, c.req.param('id')))));

  app.patch('/v1/consumers/:id', async (c) => {
    const body = parseInput(patchSchema, await readJsonBody(c, 'config'));
    const patch: { name?: string | null; filter?: Filter | null } = {};
    if (body.name !== undefined) patch.name = body.name;
    if ('filter' in body) patch.filter = filterOf(body.filter);
    const row = await updateConsumer(s, c.req.param('id'), patch);
    return c.json(await consumerView(s, row));
  });

  app.delete('/v1/consumers/:id', async (c) => {
    await deleteConsumer(s, c.req.param('id'));
    return c.body(null, 204);
  });

  app.post('/v1/consumers/:id/seek', async (c) => {
    const body = parseInput(seekSchema, await readJsonBody(c, 'small'));
    const row = await seekConsumer(s, c.req.param('id'), body.to);
    return c.json(await consumerView(s, row));
  });

  app.post('/v1/consumers/:id/key', async (c) => {
    const { row, key } = await rotateKey(s, c.req.param('id'));
    return c.json({ ...(await consumerView(s, row)), key });
  });

  return app;
}

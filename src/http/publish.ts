/**
 * POST /v1/events (admin key): one event, or an array of 1 to 1000, committed all or nothing.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { ApiError, invalidField } from '../errors.ts';
import { envelopeJson } from '../store/envelope.ts';
import type { NewEvent } from '../store/store.ts';
import type { Services } from '../services.ts';
import { requireAdmin, type Env } from './auth.ts';
import { readJsonBody } from './body.ts';
import { fieldPath, parseInput } from './validate.ts';

export const TENANT = /^[A-Za-z0-9._-]{1,64}$/;
export const TYPE = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
export const EVENT_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export const MAX_BATCH = 1000;

export const tenantSchema = z.string().regex(TENANT, 'must be 1 to 64 characters of A-Z a-z 0-9 . _ -');

export const eventInputSchema = z.strictObject({
  tenant: tenantSchema,
  type: z
    .string()
    .max(200, 'must be at most 200 characters')
    .regex(TYPE, 'must be dot-separated segments of A-Z a-z 0-9 _ - (e.g. "ticket.created")'),
  id: z.string().regex(EVENT_ID, 'must be 1 to 128 characters of A-Z a-z 0-9 . _ : -').optional(),
  data: z.unknown(),
});

export function publishRoutes(s: Services): Hono<Env> {
  const app = new Hono<Env>();
  // Label lookups done once, not per request.
  const createdCount = s.metrics.published.labels('created');
  const duplicateCount = s.metrics.published.labels('duplicate');

  app.post('/v1/events', async (c) => {
    requireAdmin(c);
    const body = await readJsonBody(c, s.config.maxBodyBytes);
    const single = !Array.isArray(body);
    const inputs: unknown[] = single ? [body] : (body as unknown[]);
    if (!single && (inputs.length === 0 || inputs.length > MAX_BATCH)) {
      throw invalidField('body', `an array must hold 1 to ${MAX_BATCH} events, not ${inputs.length}`);
    }
    const started = performance.now();
    const events = inputs.map((input, i) => toNewEvent(input, single ? '' : `[${i}]`, s.config.maxEventBytes));
    const appended = await s.publish(events);
    s.metrics.publishDuration.observe((performance.now() - started) / 1000);
    let duplicates = 0;
    for (const a of appended) if (a.duplicate) duplicates += 1;
    if (duplicates > 0) duplicateCount.inc(duplicates);
    if (appended.length > duplicates) createdCount.inc(appended.length - duplicates);

    if (single) {
      const [only] = appended;
      return c.body(envelopeJson(only!.record), only!.duplicate ? 200 : 201, jsonHeaders());
    }
    return c.body(`{"events":[${appended.map((a) => envelopeJson(a.record)).join(',')}]}`, 201, jsonHeaders());
  });

  return app;
}

/** A fresh object per response: the Node adapter may keep and change the one it is given. */
export const jsonHeaders = (): Record<string, string> => ({ 'content-type': 'application/json' });

/**
 * The shape eventInputSchema accepts, checked directly: what nearly every event is. Anything
 * else goes through the schema, which then names the field that is wrong.
 */
function plainValidEvent(input: object): input is { tenant: string; type: string; id?: string; data: unknown } {
  let keys = 0;
  for (const key in input) {
    if (key !== 'tenant' && key !== 'type' && key !== 'data' && key !== 'id') return false;
    keys += 1;
  }
  const e = input as Record<string, unknown>;
  const { tenant, type, id } = e;
  return (
    keys >= 3 &&
    typeof tenant === 'string' &&
    TENANT.test(tenant) &&
    typeof type === 'string' &&
    type.length <= 200 &&
    TYPE.test(type) &&
    (keys === 3 || (typeof id === 'string' && EVENT_ID.test(id)))
  );
}

function toNewEvent(input: unknown, root: string, maxEventBytes: number): NewEvent {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw invalidField(root || 'body', 'must be an event object {"tenant","type","data","id"?}');
  }
  if (!('data' in input)) throw invalidField(fieldPath(root, ['data']), 'is required (null is allowed)');
  const event = plainValidEvent(input) ? input : parseInput(eventInputSchema, input, root);
  let data: string;
  try {
    data = JSON.stringify(event.data);
  } catch {
    // Only a stack overflow can get here: JSON.parse produced the value.
    throw invalidField(fieldPath(root, ['data']), 'is nested too deeply');
  }
  const size = Buffer.byteLength(data);
  if (size > maxEventBytes) {
    throw new ApiError('payload_too_large', `${fieldPath(root, ['data'])}: ${size} bytes serialized, over the ${maxEventBytes}-byte limit`, {
      field: fieldPath(root, ['data']),
      limit: maxEventBytes,
    });
  }
  return { tenant: event.tenant, type: event.type, id: event.id, data };
}

/**
 * Trying a webhook's shape without the bridge: render the request one event would make
 * (preview), or send it now and show the receiver's answer (test).
 *
 * - The event is one from the consumer's tenant, named by its cursor, or a sample (type
 *   `pollgate.webhook.test` and the given `data`, unless given another type).
 * - `webhook` may hold changes not saved yet (the fields of a PATCH): the page previews an edit
 *   before saving it. They are checked as a PATCH would check them.
 * - Neither moves a cursor, counts as an attempt, nor changes the webhook's health; both work
 *   with the webhook disabled or the bridge paused. Credentials are never shown: previews and
 *   test answers carry them as "•••".
 */
import { nanoid } from 'nanoid';
import { findConsumer } from '../consumers/consumers.ts';
import { ApiError, invalidField } from '../errors.ts';
import type { Services } from '../services.ts';
import { decodeCursor, encodeCursor } from '../store/cursor.ts';
import type { EventRecord, WebhookRow } from '../store/store.ts';
import type { AttemptOutcome } from './deliver.ts';
import { redacted, renderRequest, scrubbedResponse, shapeOf, type OutgoingRequest, type Shape } from './shape.ts';
import { allowTarget, draftWebhook, type WebhookInput } from './webhooks.ts';

export interface TryInput {
  /** An event of the consumer's tenant, by its cursor. */
  cursor?: string | undefined;
  /** A sample event (when no cursor): its type and data. */
  event?: { type?: string | undefined; data?: unknown } | undefined;
  /** Unsaved changes to try instead of the stored fields. */
  webhook?: Partial<WebhookInput> | undefined;
}

export interface Preview {
  event: { id: string; cursor: string | null; type: string };
  request: OutgoingRequest | null;
  /** Why the event cannot be rendered (the delivery would fail with error "render"). */
  error: string | null;
}

async function prepare(s: Services, consumerId: string, input: TryInput): Promise<{ shape: Shape; row: WebhookRow; event: EventRecord; sample: boolean; name: string | null }> {
  const consumer = await findConsumer(s, consumerId);
  const stored = await s.store.getWebhook(consumerId);
  if (!stored && !input.webhook?.url) throw new ApiError('not_found', 'this consumer has no webhook; give `webhook` (with a url) to try one');
  const changes = input.webhook;
  const row = changes
    ? await underWebhook(async () => {
        if (changes.url !== undefined) await allowTarget(s, changes.url);
        return draftWebhook(s, consumerId, stored, changes);
      })
    : stored!;
  let event: EventRecord;
  let sample = false;
  if (input.cursor !== undefined) {
    const decoded = decodeCursor(input.cursor);
    if (!decoded || !('pos' in decoded) || decoded.pos < 1) throw invalidField('cursor', 'is not the cursor of an event');
    const page = await s.store.read(consumer.tenant, decoded.pos - 1, 1);
    const found = page.records[0];
    if (!found || found.pos !== decoded.pos) throw new ApiError('not_found', `no event at cursor ${input.cursor} in tenant "${consumer.tenant}" (it may have expired)`);
    event = found;
  } else {
    sample = true;
    event = {
      pos: consumer.cursor + 1,
      id: `evt_test_${nanoid(16)}`,
      tenant: consumer.tenant,
      type: input.event?.type ?? 'pollgate.webhook.test',
      time: s.clock.now(),
      data: JSON.stringify(input.event?.data ?? { message: 'a test event from pollgate' }),
    } as EventRecord;
  }
  return { shape: shapeOf(row), row, event, sample, name: consumer.name };
}

/** A problem with the unsaved changes names its field under `webhook` (`webhook.body`), where the caller put it. */
async function underWebhook<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const field = error.details.field;
    if (typeof field !== 'string' || field.startsWith('webhook.')) throw error;
    const message = error.message.startsWith(`${field}: `) ? error.message.slice(field.length + 2) : error.message;
    throw new ApiError(error.code, `webhook.${field}: ${message}`, { ...error.details, field: `webhook.${field}` });
  }
}

function render(s: Services, consumerId: string, p: Awaited<ReturnType<typeof prepare>>): { request: OutgoingRequest | null; error: string | null } {
  try {
    return { request: renderRequest(p.shape, p.event, { id: consumerId, name: p.name }, Math.floor(Date.now() / 1000)), error: null };
  } catch (error) {
    // Rendering touches no store: whatever it throws is the render problem the delivery would record.
    return { request: null, error: (error as Error).message };
  }
}

function eventView(p: Awaited<ReturnType<typeof prepare>>): Preview['event'] {
  return { id: p.event.id, cursor: p.sample ? null : encodeCursor(p.event.pos), type: p.event.type };
}

export async function previewWebhook(s: Services, consumerId: string, input: TryInput): Promise<Preview> {
  const p = await prepare(s, consumerId, input);
  const { request, error } = render(s, consumerId, p);
  return { event: eventView(p), request: request && redacted(request, p.shape), error };
}

export interface TestResult extends Preview {
  ok: boolean;
  status: number | null;
  /** The attempt's error class (timeout, refused, http_status, render…), as the attempt log says it. */
  error: string | null;
  detail: string | null;
  duration_ms: number;
  response: AttemptOutcome['response'];
}

/** Sends the request now (the SSRF rules apply as to any delivery) and reports the answer. */
export async function testWebhook(s: Services, consumerId: string, input: TryInput): Promise<TestResult> {
  const p = await prepare(s, consumerId, input);
  const { request, error } = render(s, consumerId, p);
  if (!request) {
    return { event: eventView(p), request: null, ok: false, status: null, error: 'render', detail: error, duration_ms: 0, response: null };
  }
  const outcome = await s.deliverer.deliver({ ...request, timeoutMs: p.row.timeout_ms });
  return {
    event: eventView(p),
    request: redacted(request, p.shape),
    ok: outcome.ok,
    status: outcome.status,
    error: outcome.error,
    detail: outcome.detail,
    duration_ms: outcome.durationMs,
    response: scrubbedResponse(outcome.response, p.shape),
  };
}

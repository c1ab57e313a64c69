/**
 * GET /openapi.json: an OpenAPI 3.1 document built from the zod schemas that validate the
 * requests (bodies and the poll query), so the document cannot drift from the code. Response
 * schemas are typed against the view types the handlers return (z.ZodType<View>), so a change
 * to a view that the document does not follow fails to compile.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { ConsumerView } from '../consumers/consumers.ts';
import { positionSchema } from '../consumers/positions.ts';
import { errorStatus } from '../errors.ts';
import type { Preview, TestResult } from '../push/preview.ts';
import { METHODS } from '../push/shape.ts';
import type { WebhookView } from '../push/webhooks.ts';
import type { Services } from '../services.ts';
import { VERSION } from '../version.ts';
import { ackSchema, pollQuerySchema } from './consumer-api.ts';
import { createSchema, patchSchema, seekSchema } from './consumers.ts';
import { eventInputSchema, MAX_BATCH } from './publish.ts';
import { MAX_LIMIT as BROWSE_MAX, SCAN_BUDGET } from './tenant-events.ts';
import { UI_ASSETS, type UiAsset } from './ui.ts';
import { bridgeSchema, trySchema, webhookPatchSchema, webhookSchema } from './webhooks.ts';

const cursor = z.string().meta({ description: 'Opaque log position.', example: 't0000000000000042' });
const isoTime = z.string().meta({ format: 'date-time', example: '2026-11-22T10:00:00.000Z' });

const envelope = z
  .object({
    id: z.string(),
    cursor,
    type: z.string(),
    tenant: z.string(),
    time: isoTime,
    data: z.unknown(),
  });

// The filter is validated by parseFilter (filter/filter.ts), which is strict: unknown keys are
// errors, so the document says additionalProperties:false too.
const filterDoc = z
  .strictObject({
    types: z.array(z.string()).optional().meta({ description: '`*` matches one segment, a final `**` one or more.' }),
    where: z
      .array(
        z.strictObject({
          field: z.string().meta({ example: 'data.priority' }),
          op: z.enum(['eq', 'ne', 'in', 'nin', 'contains', 'starts_with', 'exists', 'gt', 'gte', 'lt', 'lte']),
          value: z.unknown().optional(),
        }),
      )
      .optional()
      .meta({ description: 'Numbered conditions, 1-based, referenced by `expression`.' }),
    expression: z.string().optional().meta({ example: '(1 or 2) and 3' }),
  })
  .nullable();

const webhookView = z
  .object({
    consumer_id: z.string(),
    url: z.string().meta({ description: 'The target, or a template with {{path}} tags in its path and query.' }),
    method: z.string(),
    format: z.enum(['json', 'xml', 'form']),
    body: z.string().nullable().meta({ description: 'The body template; null: the envelope as JSON (no body for GET and DELETE).' }),
    headers: z.record(z.string(), z.string()),
    auth: z
      .union([
        z.object({ type: z.literal('basic'), username: z.string() }),
        z.object({ type: z.literal('bearer') }),
        z.object({ type: z.literal('api_key'), in: z.enum(['header', 'query']), name: z.string() }),
      ])
      .nullable()
      .meta({ description: 'The kind of endpoint authentication; its password, token or value is never shown.' }),
    secret_header: z.object({ name: z.string() }).nullable().meta({ description: 'The static shared-secret header (its value is never shown).' }),
    signing: z.boolean(),
    missing: z.enum(['empty', 'fail']),
    retry: z.object({ schedule: z.array(z.string()).nullable(), max_age: z.string().nullable() }).nullable(),
    rate_limit: z.number().nullable(),
    alerts: z.object({ enabled: z.boolean().nullable(), failures: z.number().nullable(), window: z.string().nullable() }).nullable(),
    timeout_ms: z.number(),
    enabled: z.boolean(),
    disabled_reason: z.string().nullable(),
    health: z.object({
      last_success_at: isoTime.nullable(),
      last_error: z.string().nullable(),
      last_status: z.number().nullable(),
      consecutive_failures: z.number(),
      attempt: z.number(),
      next_attempt_at: isoTime.nullable(),
      failing: z.boolean().meta({ description: 'In a failing episode: the alert `pollgate.webhook.failing` was due.' }),
    }),
    created_at: isoTime,
    updated_at: isoTime,
  }) satisfies z.ZodType<WebhookView>;

/**
 * What each webhook field does, for the document only: the schemas that validate stay in
 * http/webhooks.ts and describedWebhook() lays these over them (test/openapi.test.ts checks that
 * the described schema and the validating one are the same once descriptions are set aside).
 */
const TELEGRAM_BODY = '{"chat_id": "-1001234", "text": "new request: {{data.subject}} {{data.link}}", "priority": {{data.priority}}, "ticket": {{data}}}';
const WEBHOOK_FIELD_DOCS: Record<string, { description: string; examples?: unknown[] }> = {
  url: {
    description: 'Where deliveries go: an absolute http(s) URL, or a template with `{{path}}` tags in its path and query only (never the scheme, host or port). Tag values are percent-encoded; the rendered URL is checked against the private-address rules when it is sent.',
    examples: ['https://crm.example.com/api/tickets/{{data.ticket_id}}/comments?ref={{id}}'],
  },
  secret: { description: 'The Standard Webhooks signing secret (`whsec_…`); generated when a webhook is created without one, shown only by the call that sets or generates it.' },
  headers: { description: 'Headers sent with every delivery. Values may hold `{{path}}` tags, rendered as they are (a rendered value with CR/LF or another control character fails the attempt with error `render`).' },
  method: { description: 'The HTTP method (default POST). GET and DELETE send no body unless a `body` is given.' },
  timeout_ms: { description: 'Per attempt (default 10000).' },
  enabled: { description: 'Deliver (default true; the consumer is in push mode). false keeps the webhook and returns the consumer to pull mode at its cursor.' },
  format: {
    description: 'How the body is sent and how tags in `body` are escaped: `json` (default; application/json), `xml` (application/xml; charset=utf-8) or `form` (application/x-www-form-urlencoded). `xml` and `form` need a `body`.',
  },
  body: {
    description:
      'The body template (at most 64 KiB), with `{{path}}` tags: `id`, `type`, `tenant`, `time`, `cursor`, `data.a.b`, `data.items.0`, `consumer.id`, `consumer.name` (plain tags and `{{! comments }}` only). In `json` a tag inside a string is string-escaped and a tag standing as a value is the JSON value; `xml` XML-escapes; `form` form-encodes. Checked when configured (a `json` body must be JSON, an `xml` body well-formed, once tags are filled). null or absent: the envelope as JSON (no body for GET and DELETE).',
    examples: [TELEGRAM_BODY, 'author={{data.author.email}}&text={{data.text}}&ref={{id}}', '<update event="{{id}}"><status>{{data.status}}</status></update>'],
  },
  auth: {
    description: 'Endpoint credentials: `basic` (username, password), `bearer` (token) or `api_key` (sent in a `header` or the `query`, with its name and value). Write-only: GET shows the kind and names, never the secret. Absent from a PUT: the stored one is kept; null removes it.',
    examples: [{ type: 'bearer', token: 'chat-token-456' }, { type: 'api_key', in: 'header', name: 'X-Api-Key', value: 'erp-key-123' }],
  },
  secret_header: {
    description: 'A static shared-secret header for receivers that only compare a header. Write-only (GET shows its name); absent from a PUT: kept; null removes it.',
    examples: [{ name: 'X-Hook-Secret', value: 's3cret' }],
  },
  signing: { description: 'Send the Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature), signed over the bytes actually sent (default true).' },
  missing: {
    description: 'A tag whose path the event lacks: `empty` (default) renders "" (null where a JSON value stands); `fail` fails the attempt with error `render` naming the path, retried on the schedule like any failure.',
  },
  retry: {
    description: 'This webhook\'s own retry delays (e.g. ["30m"]; the last repeats) and give-up age (e.g. "24h"), over POLLGATE_RETRY_SCHEDULE and POLLGATE_RETRY_MAX_AGE. null: the server\'s.',
    examples: [{ schedule: ['30m'], max_age: '24h' }],
  },
  rate_limit: { description: 'At most this many deliveries per second (more than 0, at most 10000): attempts start at least 1/rate apart. null: no limit.' },
  alerts: {
    description: 'Failure alerts (`pollgate.webhook.failing` / `.recovered`): on or off, and how many failed attempts within which window make the webhook failing, over POLLGATE_ALERT_FAILURES (3) and POLLGATE_ALERT_WINDOW (1d). null: the server\'s.',
    examples: [{ failures: 3, window: '1d' }],
  },
};

function describedWebhook<T extends z.ZodObject>(schema: T): T {
  const shape = Object.fromEntries(
    Object.entries(schema.shape).map(([name, field]) => [name, WEBHOOK_FIELD_DOCS[name] ? (field as z.ZodType).meta(WEBHOOK_FIELD_DOCS[name]) : field]),
  );
  return schema.extend(shape) as unknown as T;
}

const webhookBody = describedWebhook(webhookSchema);
const webhookPatchBody = describedWebhook(webhookPatchSchema);
const tryBody = trySchema.extend({
  cursor: trySchema.shape.cursor.meta({ description: 'An event of the consumer\'s tenant, by its cursor. Absent: a sample event.' }),
  event: trySchema.shape.event.meta({
    description: 'The sample event (when no `cursor`): its type (default `pollgate.webhook.test`) and data.',
    examples: [{ type: 'ticket.created', data: { subject: 'VPN down', priority: 2 } }],
  }),
  webhook: webhookPatchBody.optional().meta({ description: 'Unsaved changes to try instead of the stored fields (the fields of a PATCH; a consumer without a webhook needs `url`).' }),
});
const webhookExample = {
  url: 'https://chat.example.com/bot/sendMessage',
  method: 'POST',
  format: 'json',
  body: TELEGRAM_BODY,
  auth: { type: 'bearer', token: 'chat-token-456' },
  retry: { schedule: ['30m'], max_age: '24h' },
  rate_limit: 20,
  alerts: { failures: 3, window: '1d' },
};

const outgoingRequest = z
  .object({
    method: z.enum(METHODS),
    url: z.string(),
    headers: z.record(z.string(), z.string()),
    body: z.string().nullable().meta({ description: 'null: no body.' }),
  })
  .meta({ description: 'The request as it would be (was) sent; credentials appear as "•••".' });

const previewView = z.object({
  event: z.object({
    id: z.string(),
    cursor: cursor.nullable().meta({ description: 'null: a sample event.' }),
    type: z.string(),
  }),
  request: outgoingRequest.nullable().meta({ description: 'null: the event cannot be rendered (see `error`).' }),
  error: z.string().nullable().meta({ description: 'Why the event cannot be rendered: a delivery of it would fail with error `render`.' }),
}) satisfies z.ZodType<Preview>;

const testResultView = previewView.extend({
  ok: z.boolean().meta({ description: 'The receiver answered 2xx.' }),
  status: z.number().nullable(),
  error: z.string().nullable().meta({ description: 'The error class as the attempt log says it (`timeout`, `refused`, `http_status`, `render`, `target_not_allowed`…); null when ok.' }),
  detail: z.string().nullable(),
  duration_ms: z.number(),
  response: z
    .object({
      headers: z.record(z.string(), z.string()),
      body: z.string().meta({ description: 'The first KiB of the answer, as text.' }),
      truncated: z.boolean(),
    })
    .nullable()
    .meta({ description: 'null: no answer came.' }),
}) satisfies z.ZodType<TestResult>;

const consumerView = z
  .object({
    id: z.string(),
    tenant: z.string(),
    name: z.string().nullable(),
    filter: filterDoc,
    mode: z.enum(['pull', 'push']),
    cursor,
    lag: z.number().meta({ description: "Events of the tenant after the committed cursor (before filtering)." }),
    polling: z.boolean().meta({ description: 'A poll is held right now, on any node.' }),
    last_poll_at: isoTime.nullable().meta({
      description: 'Latest poll (PostgreSQL: on any node; SQLite: since this process started; null: none).',
    }),
    webhook: webhookView.nullable(),
    created_at: isoTime,
    updated_at: isoTime,
  }) satisfies z.ZodType<Omit<ConsumerView, 'filter'> & { filter: unknown }>;

const withKey = consumerView.extend({ key: z.string().meta({ description: 'Shown only now.' }) });

const errorBody = z
  .object({
    error: z.looseObject({
      code: z.enum(Object.keys(errorStatus) as [string, ...string[]]),
      message: z.string(),
      field: z.string().optional(),
      earliest: cursor.optional(),
    }),
  });

const pollResponse = z.object({
  events: z.array(envelope),
  cursor,
  more: z.boolean(),
});

const deliveries = z.object({
  deliveries: z.array(
    z.object({
      id: z.number(),
      event_id: z.string(),
      cursor,
      attempt: z.number(),
      status: z.number().nullable(),
      error: z.string().nullable(),
      duration_ms: z.number(),
      at: isoTime,
      next_attempt_at: isoTime.nullable(),
      response: z.string().nullable().meta({ description: "The first KiB of the receiver's answer, as text." }),
    }),
  ),
  next: z.number().nullable(),
});

const bridgeView = z.object({ enabled: z.boolean(), consumers_in_push_mode: z.number() });

const tenantEvents = z.object({
  events: z.array(envelope).meta({ description: 'Newest first.' }),
  next: cursor.nullable().meta({ description: 'Pass as `before` for older events; null when nothing older is retained.' }),
  head: cursor.meta({ description: 'The tenant’s newest event.' }),
  earliest: cursor.meta({ description: 'The trim mark: every event after it is retained.' }),
});

const opsSeries = z.object({
  node: z.string().meta({ description: 'The node that sampled: every figure but lag is this node’s own.' }),
  engine: z.enum(['sqlite', 'postgres']),
  started_at: isoTime.meta({ description: 'When this node started sampling (its start): the history begins there.' }),
  interval_ms: z.number(),
  capacity: z.number().meta({ description: 'Most samples kept (the oldest are dropped).' }),
  samples: z.array(
    z.object({
      at: isoTime.meta({ description: 'The end of the interval.' }),
      seconds: z.number().meta({ description: 'The interval covered; a rate is a count / seconds.' }),
      published: z.number().meta({ description: 'Events appended by POST /v1/events on this node (duplicates not counted).' }),
      delivered: z.number().meta({ description: 'Webhook attempts answered 2xx, from this node.' }),
      failed: z.number().meta({ description: 'Webhook attempts that failed, from this node.' }),
      lag_total: z.number().meta({ description: 'Lag summed over every consumer (from the database: all nodes).' }),
      lag_max: z.number(),
      consumers_lagging: z.number(),
    }),
  ).meta({ description: 'Oldest first.' }),
});

type Schema = z.ZodType;
type Auth = 'admin' | 'consumer' | 'none';

interface Operation {
  /** operationId: unique, stable, for generated clients. */
  id: string;
  summary: string;
  auth: Auth;
  body?: Schema;
  /** An example request body. */
  example?: unknown;
  query?: z.ZodObject;
  params?: string[];
  responses: Record<number, Schema | null | string>;
  /** 4xx answers beyond those implied by auth, body, query and params (status → when). */
  errors?: Record<number, string>;
}

/**
 * The 4xx/503 answers of an operation, each with the error shape. Most follow from what the
 * operation takes: a key (401, 403), a JSON body (400, 413, 415), a query (400), an id (404).
 */
function errorResponses(op: Operation): Record<number, string> {
  const errors: Record<number, string> = {};
  if (op.body) errors[400] = '`invalid_json` (not JSON, empty) or `invalid_request` (wrong shape, value or unknown field; `field` names it).';
  else if (op.query) errors[400] = '`invalid_request`: a query parameter is out of range or malformed; `field` names it.';
  if (op.auth !== 'none') {
    errors[401] = '`unauthorized`: no key, or the key is not valid.';
    errors[403] =
      op.auth === 'admin'
        ? '`forbidden`: a consumer key; this call needs the admin key.'
        : '`forbidden`: the admin key; this call needs a consumer key (pgk_…).';
  }
  if (op.params) errors[404] = '`not_found`: no consumer with this id.';
  if (op.body) {
    errors[413] = '`payload_too_large`: the body (or one event’s `data`) is over its limit (publish: POLLGATE_MAX_BODY_BYTES; consumer and webhook settings: 512 KiB; other bodies: 64 KiB).';
    errors[415] = '`unsupported_media_type`: the content-type is not JSON, or declares a charset other than UTF-8.';
  }
  Object.assign(errors, op.errors);
  // Every call but /healthz is refused while the server shuts down.
  if (op.id !== 'healthz') errors[503] ??= '`shutting_down` or `unavailable` (the database is unreachable or could not commit): retry after `Retry-After` seconds (publish with producer ids to retry safely).';
  return errors;
}

export function openApiDocument(s: Services): Record<string, unknown> {
  const json = (schema: Schema) => z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' });
  const out = (schema: Schema) => z.toJSONSchema(schema, { io: 'output', target: 'draft-2020-12', unrepresentable: 'any' });
  const clean = (doc: Record<string, unknown>) => {
    const { $schema: _ignored, ...rest } = doc;
    return rest;
  };
  const errorRef = { $ref: '#/components/schemas/Error' };
  const publishBody = z.union([eventInputSchema, z.array(eventInputSchema).min(1).max(MAX_BATCH)]);
  const pollCursor = '`invalid_request` (wait, limit) or `invalid_cursor` (after, ack: not a cursor of this gateway, or past the head); `field` names it.';

  const ops: Record<string, Record<string, Operation>> = {
    '/v1/events': {
      post: {
        id: 'publishEvents',
        summary: `Publish one event, or an array of 1 to ${MAX_BATCH} (all or nothing). Answered after the commit is durable.`,
        auth: 'admin',
        body: publishBody,
        responses: {
          201: z.union([envelope, z.object({ events: z.array(envelope) })]),
          200: envelope.meta({ description: 'A single event whose id was already in the log: the original.' }),
        },
      },
      get: {
        id: 'pollEvents',
        summary: 'Long-poll the consumer’s events. Answers at once when events are there, else holds up to `wait` seconds.',
        auth: 'consumer',
        query: pollQuerySchema(s.config.maxWaitMs / 1000),
        responses: { 200: pollResponse },
        errors: {
          400: pollCursor,
          404: '`not_found`: the consumer was deleted while the poll was held.',
          409: '`superseded`: a newer poll of this consumer took over (one held poll per consumer, on any node); `push_mode`: the consumer is in push mode; `cursor_beyond_head`: the read position lies beyond the tenant\'s head (only after a database restore or a lossy failover; `head` names it): seek.',
          410: '`cursor_expired`: retention removed events after the read position; `earliest` says where to seek.',
        },
      },
    },
    '/v1/ack': {
      post: {
        id: 'ack',
        summary: 'Commit a cursor (idempotent; never moves backwards).',
        auth: 'consumer',
        body: ackSchema,
        responses: { 200: z.object({ cursor }) },
        errors: {
          400: '`invalid_json`, `invalid_request`, or `invalid_cursor` (not a cursor of this gateway, or past the head); `field` names it.',
          404: '`not_found`: the consumer no longer exists.',
          409: '`push_mode`: the consumer is in push mode; the bridge owns its cursor.',
        },
      },
    },
    '/v1/consumer': {
      get: {
        id: 'getOwnConsumer',
        summary: 'The calling consumer, with its cursor and lag, and the longest `wait` this server holds (also in the `pollgate-max-wait` header of every answer to a consumer route).',
        auth: 'consumer',
        responses: { 200: consumerView.extend({ max_wait: z.number().meta({ description: 'The longest `wait` (seconds) a poll may ask for (POLLGATE_MAX_WAIT).' }) }) },
      },
    },
    '/v1/consumers': {
      post: {
        id: 'createConsumer',
        summary: 'Create a consumer; its key is shown once.',
        auth: 'admin',
        body: createSchema.extend({ filter: filterDoc.optional(), start: positionSchema.optional() }),
        responses: { 201: withKey },
        errors: {
          400: '`invalid_json`, `invalid_request`, `invalid_filter` (the message names the problem) or `invalid_cursor` (start); `field` names it.',
          409: '`conflict`: the tenant already has a consumer with this name.',
        },
      },
      get: {
        id: 'listConsumers',
        summary: 'List consumers, ordered by id.',
        auth: 'admin',
        query: z.object({ tenant: z.string().optional(), limit: z.string().optional(), after: z.string().optional().meta({ description: '`next` of the previous page.' }) }),
        responses: { 200: z.object({ consumers: z.array(consumerView), next: z.string().nullable() }) },
      },
    },
    '/v1/consumers/{id}': {
      get: { id: 'getConsumer', summary: 'One consumer.', auth: 'admin', params: ['id'], responses: { 200: consumerView } },
      patch: {
        id: 'updateConsumer',
        summary: 'Change name or filter.',
        auth: 'admin',
        params: ['id'],
        body: patchSchema.extend({ filter: filterDoc.optional() }),
        responses: { 200: consumerView },
        errors: {
          400: '`invalid_json`, `invalid_request` or `invalid_filter` (the message names the problem); `field` names it.',
          409: '`conflict`: the tenant already has a consumer with this name.',
        },
      },
      delete: { id: 'deleteConsumer', summary: 'Delete the consumer (and its webhook).', auth: 'admin', params: ['id'], responses: { 204: null } },
    },
    '/v1/consumers/{id}/seek': {
      post: {
        id: 'seekConsumer',
        summary: 'Move the committed cursor.',
        auth: 'admin',
        params: ['id'],
        body: seekSchema,
        responses: { 200: consumerView },
        errors: { 400: '`invalid_json`, `invalid_request` or `invalid_cursor` (not a cursor of this gateway, or past the head); `field` names it.' },
      },
    },
    '/v1/consumers/{id}/key': {
      post: { id: 'rotateConsumerKey', summary: 'Rotate the key: the old one stops working, the new one is shown once. Takes no body.', auth: 'admin', params: ['id'], responses: { 200: withKey } },
    },
    '/v1/consumers/{id}/webhook': {
      put: {
        id: 'putWebhook',
        summary: 'Create or replace the webhook; enabled puts the consumer in push mode at its cursor. The secret is shown only when set or generated.',
        auth: 'admin',
        params: ['id'],
        body: webhookBody,
        example: webhookExample,
        responses: { 201: webhookView.extend({ secret: z.string().optional() }), 200: webhookView.extend({ secret: z.string().optional() }) },
        errors: { 400: '`invalid_json`, `invalid_request` (`field` names it) or `target_not_allowed` (the url resolves to a loopback, private, link-local or metadata address).' },
      },
      patch: {
        id: 'patchWebhook',
        summary: 'Change some fields of the webhook (e.g. {"enabled":false} pauses this one consumer); the others stay.',
        auth: 'admin',
        params: ['id'],
        body: webhookPatchBody,
        example: { body: 'text={{data.text}}&ref={{id}}', format: 'form', retry: { schedule: ['30m'], max_age: '24h' } },
        responses: { 200: webhookView.extend({ secret: z.string().optional() }) },
        errors: {
          400: '`invalid_json`, `invalid_request` (`field` names it) or `target_not_allowed` (the url resolves to a loopback, private, link-local or metadata address).',
          404: '`not_found`: no consumer with this id, or it has no webhook.',
        },
      },
      get: {
        id: 'getWebhook',
        summary: 'The webhook and its delivery health (never the secret).',
        auth: 'admin',
        params: ['id'],
        responses: { 200: webhookView },
        errors: { 404: '`not_found`: no consumer with this id, or it has no webhook.' },
      },
      delete: {
        id: 'deleteWebhook',
        summary: 'Remove the webhook: back to pull mode at the cursor the bridge reached.',
        auth: 'admin',
        params: ['id'],
        responses: { 200: consumerView },
        errors: { 404: '`not_found`: no consumer with this id, or it has no webhook.' },
      },
    },
    '/v1/consumers/{id}/webhook/preview': {
      post: {
        id: 'previewWebhook',
        summary: 'Render the request the webhook would send for one event (by cursor) or a sample, without sending it; `webhook` tries unsaved changes. Moves nothing, works while disabled or paused.',
        auth: 'admin',
        params: ['id'],
        body: tryBody,
        example: { event: { type: 'ticket.created', data: { subject: 'VPN down', priority: 2 } }, webhook: { body: TELEGRAM_BODY } },
        responses: { 200: previewView },
        errors: {
          400: '`invalid_json`, `invalid_request` (`field` names it: a cursor that is not an event\'s, a wrong unsaved field) or `target_not_allowed` (an unsaved url on a private address).',
          404: '`not_found`: no consumer with this id, it has no webhook (and `webhook.url` is not given), or no event at `cursor` (it may have expired).',
        },
      },
    },
    '/v1/consumers/{id}/webhook/test': {
      post: {
        id: 'testWebhook',
        summary: 'Send the request for one event (by cursor) or a sample now and answer the receiver\'s status, headers, first KiB of its body and the time taken. Records no attempt, moves no cursor; works while disabled or paused; the private-address rules apply.',
        auth: 'admin',
        params: ['id'],
        body: tryBody,
        example: { cursor: 't0000000000000042' },
        responses: { 200: testResultView },
        errors: {
          400: '`invalid_json`, `invalid_request` (`field` names it) or `target_not_allowed` (an unsaved url on a private address).',
          404: '`not_found`: no consumer with this id, it has no webhook (and `webhook.url` is not given), or no event at `cursor` (it may have expired).',
        },
      },
    },
    '/v1/consumers/{id}/deliveries': {
      get: {
        id: 'listDeliveries',
        summary: 'Webhook delivery attempts, newest first.',
        auth: 'admin',
        params: ['id'],
        query: z.object({ limit: z.string().optional(), before: z.string().optional() }),
        responses: { 200: deliveries },
      },
    },
    '/v1/bridge': {
      get: { id: 'getBridge', summary: 'Whether the push bridge delivers.', auth: 'admin', responses: { 200: bridgeView } },
      put: { id: 'setBridge', summary: 'Pause or resume all pushing at once.', auth: 'admin', body: bridgeSchema, responses: { 200: bridgeView } },
    },
    '/v1/tenants/{tenant}/events': {
      get: {
        id: 'browseTenantEvents',
        summary: `A tenant's events, newest first (the ops page's event browser); reading moves no cursor. \`limit\` 1 to ${BROWSE_MAX} (default 50); \`before\` (a cursor, exclusive) pages back; \`type\`: patterns as in consumer filters, comma-separated; \`at\`: the one event at that cursor. One request examines at most ${SCAN_BUDGET} events, so a rare type may come back short with a \`next\` to go on from.`,
        auth: 'admin',
        params: ['tenant'],
        query: z.object({
          limit: z.string().optional(),
          before: z.string().optional().meta({ description: '`next` of the previous page: events older than this cursor.' }),
          type: z.string().optional().meta({ description: 'e.g. `ticket.*,message.**`.' }),
          at: z.string().optional().meta({ description: 'A cursor: only the event at it.' }),
        }),
        responses: { 200: tenantEvents },
        errors: {
          400: '`invalid_request` (tenant, limit, type, at with before) or `invalid_cursor` (before, at: not a cursor of this gateway, or past the head); `field` names it.',
          404: '`not_found`: nothing was ever published for this tenant.',
        },
      },
    },
    '/v1/ops/series': {
      get: {
        id: 'opsSeries',
        summary: 'This node’s activity since it started, sampled every few seconds (publish and delivery counts, failures, lag): what the ops page charts.',
        auth: 'admin',
        responses: { 200: opsSeries },
      },
    },
    '/healthz': { get: { id: 'healthz', summary: 'Alive.', auth: 'none', responses: { 200: z.object({ status: z.string() }) } } },
    '/readyz': {
      get: {
        id: 'readyz',
        summary: 'The database answers and takes writes, and the server is not shutting down.',
        auth: 'none',
        responses: {
          200: z.object({
            status: z.string(),
            engine: z.enum(['sqlite', 'postgres']),
            node: z.string().meta({ description: 'This node (host, process, random part); names it in database sessions and push leases.' }),
          }),
          503: z
            .union([
              z.object({
                status: z.enum(['shutting_down', 'database_unavailable', 'writes_failing']),
                reason: z.string().optional().meta({ description: 'writes_failing: the database’s own words.' }),
                since: z.string().optional().meta({ description: 'writes_failing: when the writes began to fail.' }),
              }),
              errorBody,
            ])
            .meta({ description: 'Not ready: the database does not answer, the last write failed and a new one fails too (a full disk, a read-only database), or the server is shutting down.' }),
        },
      },
    },
    '/metrics': { get: { id: 'metrics', summary: 'Prometheus metrics.', auth: 'admin', responses: { 200: 'text/plain' } } },
    '/openapi.json': { get: { id: 'openapi', summary: 'This document.', auth: 'none', responses: { 200: 'application/json' } } },
    // The ops page and its assets (http/ui.ts): served without a key; the page asks for the
    // admin key and sends it on its own API calls.
    '/ui': { get: { id: 'opsPage', summary: 'The ops page: consumers and webhooks (create, edit, seek, rotate, pause, delete), held polls, delivery attempts, the bridge toggle, an event browser and charts of this node.', auth: 'none', responses: { 200: 'text/html' } } },
    '/ui/': { get: { id: 'opsPageSlash', summary: 'The ops page (same as /ui).', auth: 'none', responses: { 200: 'text/html' } } },
    ...uiAssetOps(),
  };

  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, methods] of Object.entries(ops)) {
    paths[path] = {};
    for (const [method, op] of Object.entries(methods)) {
      const parameters: unknown[] = (op.params ?? []).map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
      if (op.query) {
        for (const [name, schema] of Object.entries(op.query.shape)) {
          const doc = clean(json(schema as Schema));
          parameters.push({ name, in: 'query', required: false, schema: doc, ...(doc.description ? { description: doc.description } : {}) });
        }
      }
      const responses: Record<string, unknown> = {};
      for (const [status, schema] of Object.entries(op.responses)) {
        if (schema === null) responses[status] = { description: 'No content' };
        else if (typeof schema === 'string') responses[status] = { description: 'OK', content: { [schema]: {} } };
        else responses[status] = { description: 'OK', content: { 'application/json': { schema: clean(out(schema)) } } };
      }
      for (const [status, description] of Object.entries(errorResponses(op))) {
        responses[status] ??= { description, content: { 'application/json': { schema: errorRef } } };
      }
      responses.default = { description: 'An error; `code` says which.', content: { 'application/json': { schema: errorRef } } };
      paths[path]![method] = {
        operationId: op.id,
        summary: op.summary,
        ...(op.auth === 'none' ? { security: [] } : { security: [{ [op.auth === 'admin' ? 'adminKey' : 'consumerKey']: [] }] }),
        ...(parameters.length ? { parameters } : {}),
        ...(op.body
          ? { requestBody: { required: true, content: { 'application/json': { schema: clean(json(op.body)), ...(op.example !== undefined ? { example: op.example } : {}) } } } }
          : {}),
        responses,
      };
    }
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'pollgate',
      version: VERSION,
      description: 'A pull-first event gateway: publish events, long-poll them per consumer and ack a cursor, or switch a consumer to push (webhooks).',
    },
    components: {
      schemas: { Error: clean(out(errorBody)) },
      securitySchemes: {
        adminKey: { type: 'http', scheme: 'bearer', description: 'The admin key (POLLGATE_ADMIN_KEY or data/admin.key).' },
        consumerKey: { type: 'http', scheme: 'bearer', description: 'A consumer key (pgk_…), shown once at creation or rotation.' },
      },
    },
    paths,
  };
}

/** One operation per file of the ops page (http/ui.ts UI_ASSETS): app.js is opsPageAppJs. */
function uiAssetOps(): Record<string, Record<string, Operation>> {
  const ops: Record<string, Record<string, Operation>> = {};
  for (const [name, asset] of Object.entries(UI_ASSETS) as Array<[UiAsset, (typeof UI_ASSETS)[UiAsset]]>) {
    const id = `opsPage${name.split('.').map((part) => part[0]!.toUpperCase() + part.slice(1)).join('')}`;
    ops[`/ui/${name}`] = { get: { id, summary: asset.what, auth: 'none', responses: { 200: asset.type.split(';')[0]! } } };
  }
  return ops;
}

export function openApiRoutes(s: Services): Hono {
  const app = new Hono();
  let cached: string | null = null;
  app.get('/openapi.json', (c) => {
    cached ??= JSON.stringify(openApiDocument(s));
    return c.body(cached, 200, { 'content-type': 'application/json' });
  });
  return app;
}

/**
 * The wire types of the pollgate API (SPEC.md, v1), written by hand so the client does not
 * import server code: a client bundle must not pull in SQLite, Hono or pino. Field names are
 * the JSON names. Where the server sends more than the SPEC promises (consumer views carry
 * `polling`, `webhook`, timestamps), the extra fields are typed too, marked as such.
 *
 * Terminology: see SPEC.md "Words". A cursor is an opaque string: compare for equality only.
 */

/** An opaque log position. Never parse it, never compare it for order. */
export type Cursor = string;

/** An immutable record of the log; identical on the poll path and the push path. */
export interface Envelope<D = unknown> {
  id: string;
  cursor: Cursor;
  type: string;
  tenant: string;
  /** Commit time, ISO 8601 UTC with milliseconds. */
  time: string;
  data: D;
}

/** One event to publish. `data` is required (null allowed); `id` is the idempotency key. */
export interface PublishInput {
  tenant: string;
  type: string;
  data: unknown;
  id?: string;
}

// ---- polling ----------------------------------------------------------------

export interface PollOptions {
  /** Seconds to hold while nothing is available (decimals allowed); server default 25. */
  wait?: number;
  /** Most events returned, 1..1000; server default 100. */
  limit?: number;
  /** Read after this cursor instead of the committed one. */
  after?: Cursor;
  /** Commit this cursor first (saves a round trip). */
  ack?: Cursor;
  signal?: AbortSignal;
}

/** The answer to GET /v1/events. */
export interface PollPage<D = unknown> {
  events: Envelope<D>[];
  /** Read up to here: the last event's cursor, or how far the filter scanned. */
  cursor: Cursor;
  /** More matching events remain after `cursor`. */
  more: boolean;
}


// ---- consumers ----------------------------------------------------------------

export type ConditionOp =
  | 'eq'
  | 'ne'
  | 'in'
  | 'nin'
  | 'contains'
  | 'starts_with'
  | 'exists'
  | 'gt'
  | 'gte'
  | 'lt'
  | 'lte';

export interface Condition {
  /** `type`, `tenant` or `data.a.b`. */
  field: string;
  op: ConditionOp;
  value?: unknown;
}

export interface Filter {
  /** `*` matches one segment, a final `**` one or more. Absent: all types. */
  types?: string[];
  /** Numbered 1-based by position; `expression` refers to them. */
  where?: Condition[];
  /** e.g. "(1 or 2) and 3". Absent: all conditions ANDed. */
  expression?: string;
}

/** Where a consumer starts, or where a seek moves it. */
export type Position = 'earliest' | 'latest' | { cursor: Cursor } | { time: string };

export interface CreateConsumerInput {
  tenant: string;
  name?: string | null;
  filter?: Filter | null;
  /** Default "latest". */
  start?: Position;
}

export interface UpdateConsumerInput {
  name?: string | null;
  filter?: Filter | null;
}

export interface WebhookHealth {
  last_success_at: string | null;
  last_error: string | null;
  last_status: number | null;
  consecutive_failures: number;
  /** Failed attempts on the event the bridge is stuck on. */
  attempt: number;
  next_attempt_at: string | null;
  /** In a failing episode: `failures` attempts failed within `window` (the alert was due). */
  failing: boolean;
}

export type WebhookMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
/** How the body is sent and how tags in it are escaped: JSON, XML, or application/x-www-form-urlencoded. */
export type WebhookFormat = 'json' | 'xml' | 'form';

/** Endpoint credentials as written (write-only: never answered back). */
export type WebhookAuthInput =
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string }
  | { type: 'api_key'; in: 'header' | 'query'; name: string; value: string };

/** Endpoint credentials as shown: their kind and names, never the secret. */
export type WebhookAuth =
  | { type: 'basic'; username: string }
  | { type: 'bearer' }
  | { type: 'api_key'; in: 'header' | 'query'; name: string };

export interface Webhook {
  consumer_id: string;
  /** The target, or a template with {{path}} tags in its path and query. */
  url: string;
  method: WebhookMethod;
  /** Default json. */
  format: WebhookFormat;
  /** The body template; null: the envelope as JSON (no body for GET and DELETE). */
  body: string | null;
  headers: Record<string, string>;
  auth: WebhookAuth | null;
  /** The shared-secret header's name (its value is never shown). */
  secret_header: { name: string } | null;
  /** Standard Webhooks signature headers (default true). */
  signing: boolean;
  /** A tag whose path the event lacks: render empty (default) or fail the attempt. */
  missing: 'empty' | 'fail';
  /** This webhook's own retry delays and give-up age ("30m", "24h"); null: the server's. */
  retry: { schedule: string[] | null; max_age: string | null } | null;
  /** Deliveries per second at most; null: no limit. */
  rate_limit: number | null;
  /** This webhook's alert settings; null: the server's. */
  alerts: { enabled: boolean | null; failures: number | null; window: string | null } | null;
  timeout_ms: number;
  enabled: boolean;
  /** Why the bridge disabled it, if it did. */
  disabled_reason: string | null;
  health: WebhookHealth;
  created_at: string;
  updated_at: string;
}

/** The PUT answer: the secret appears only when the PUT set or generated one. */
export interface WebhookWithSecret extends Webhook {
  secret?: string;
}

/**
 * A webhook as PUT takes it; PATCH takes any of these fields. Write-only fields (`secret`,
 * `auth`, `secret_header`) left out of a PUT are kept; null removes `auth` / `secret_header`.
 * Tags `{{path}}` (`id`, `type`, `tenant`, `time`, `cursor`, `data.a.b`, `consumer.id`,
 * `consumer.name`) may stand in `url` (path and query), `body` and header values.
 */
export interface WebhookInput {
  url: string;
  /** `whsec_<base64>`; generated when absent on creation. */
  secret?: string;
  headers?: Record<string, string>;
  /** Default POST. GET and DELETE send no body unless `body` is given. */
  method?: WebhookMethod;
  /** Per attempt, default 10 000, at most 30 000. */
  timeout_ms?: number;
  enabled?: boolean;
  /** Default json; xml and form need a `body`. */
  format?: WebhookFormat;
  /** A template (≤ 64 KiB); null: the envelope. */
  body?: string | null;
  auth?: WebhookAuthInput | null;
  secret_header?: { name: string; value: string } | null;
  /** Default true. */
  signing?: boolean;
  /** Default "empty". */
  missing?: 'empty' | 'fail';
  /** Durations as text: `{ schedule: ['30m'], max_age: '24h' }`; null: the server's. */
  retry?: { schedule?: string[]; max_age?: string } | null;
  /** Deliveries per second (> 0, ≤ 10 000); null: no limit. */
  rate_limit?: number | null;
  /** e.g. `{ failures: 3, window: '1d' }`; null: the server's. */
  alerts?: { enabled?: boolean; failures?: number; window?: string } | null;
}

/** Which event a preview or test uses, and unsaved changes to try. */
export interface WebhookTryInput {
  /** An event of the consumer's tenant, by its cursor. Absent: a sample event. */
  cursor?: Cursor;
  /** The sample (when no cursor): type (default `pollgate.webhook.test`) and data. */
  event?: { type?: string; data?: unknown };
  /** Changes to try instead of the stored fields (a consumer without a webhook needs `url`). */
  webhook?: Partial<WebhookInput>;
}

/** A request as the webhook sends it; credentials shown as "•••". */
export interface WebhookRequest {
  method: WebhookMethod;
  url: string;
  headers: Record<string, string>;
  /** null: no body. */
  body: string | null;
}

export interface WebhookPreview {
  /** The event rendered; cursor null for a sample. */
  event: { id: string; cursor: Cursor | null; type: string };
  /** null when the event cannot be rendered (see `error`). */
  request: WebhookRequest | null;
  /** Why it cannot be rendered: a delivery of it would fail with error `render`. */
  error: string | null;
}

export interface WebhookTestResult extends WebhookPreview {
  /** The receiver answered 2xx. */
  ok: boolean;
  status: number | null;
  /** `timeout`, `refused`, `http_status`, `render`, `target_not_allowed`…, or null. */
  error: string | null;
  detail: string | null;
  duration_ms: number;
  /** The receiver's answer: headers and the first KiB of its body (text); null when none came. */
  response: { headers: Record<string, string>; body: string; truncated: boolean } | null;
}

export interface Consumer {
  id: string;
  tenant: string;
  name: string | null;
  filter: Filter | null;
  /** push exactly when the consumer has an enabled webhook. */
  mode: 'pull' | 'push';
  /** The committed cursor. */
  cursor: Cursor;
  /** Events of the tenant after the committed cursor (before filtering). */
  lag: number;
  /** Beyond the SPEC: a poll is held right now. */
  polling?: boolean;
  /** Beyond the SPEC, on GET /v1/consumer: the longest `wait` (seconds) the server holds a poll. */
  max_wait?: number;
  /** Beyond the SPEC: the webhook and its health, or null. */
  webhook?: Webhook | null;
  created_at?: string;
  updated_at?: string;
}

/** A consumer as answered on creation or key rotation: the key is shown only then. */
export interface ConsumerWithKey extends Consumer {
  /** `pgk_…`; stored only as a hash on the server. */
  key: string;
}

export interface ListConsumersOptions {
  tenant?: string;
  /** Page size, 1..1000 (server default 100). */
  limit?: number;
  /** The `next` of the previous page. */
  after?: string;
}

export interface ConsumerList {
  consumers: Consumer[];
  /** Pass as `after` for the next page; null on the last page. */
  next: string | null;
}

export interface Delivery {
  id?: number;
  event_id: string;
  cursor: Cursor;
  attempt: number;
  /** The HTTP status, or null when no answer came. */
  status: number | null;
  /** `timeout`, `refused`, `reset`, `http_status`…, or null. */
  error: string | null;
  duration_ms: number;
  at: string;
  next_attempt_at: string | null;
  /** The first KiB of the receiver's answer, as text; null when none came. */
  response: string | null;
}

export interface DeliveriesOptions {
  limit?: number;
  /** The `next` of the previous page. */
  before?: number;
}

export interface DeliveryList {
  deliveries: Delivery[];
  next: number | null;
}

export interface BridgeState {
  enabled: boolean;
  consumers_in_push_mode?: number;
}

/** Every error body: {"error":{"code","message",…}}. */
export interface ErrorBody {
  error: { code: string; message: string; [extra: string]: unknown };
}

/**
 * Configuring a consumer's webhook (admin key): PUT creates or replaces it and, when enabled,
 * puts the consumer in push mode at its committed cursor; DELETE (or enabled:false) returns
 * it to pull mode at the cursor the bridge reached. The secret is shown only by the PUT that
 * sets or generates it.
 */
import { endHeldPolls, findConsumer } from '../consumers/consumers.ts';
import { ApiError, invalidField } from '../errors.ts';
import type { Services } from '../services.ts';
import type { WebhookRow } from '../store/store.ts';
import { parseAlertState } from './alerts.ts';
import {
  checkShape,
  credentialsView,
  hasTags,
  parseCredentials,
  parseOptions,
  type Auth,
  type Format,
  type Method,
  type WebhookCredentials,
  type WebhookOptions,
} from './shape.ts';
import { checkTarget, TargetNotAllowed } from './targets.ts';
import { generateSecret } from './signing.ts';
import { compileTemplate, renderSample, type MissingPolicy } from './template.ts';

/** A webhook as PUT takes it (durations already in ms). Write-only fields absent from a PUT are kept; null removes them. */
export interface WebhookInput {
  url: string;
  secret?: string | undefined;
  headers?: Record<string, string> | undefined;
  method?: Method | undefined;
  timeout_ms?: number | undefined;
  enabled?: boolean | undefined;
  /** null: the default (json). */
  format?: Format | null | undefined;
  body?: string | null | undefined;
  auth?: Auth | null | undefined;
  secret_header?: { name: string; value: string } | null | undefined;
  signing?: boolean | undefined;
  missing?: MissingPolicy | undefined;
  retry?: { schedule_ms?: number[] | undefined; max_age_ms?: number | undefined } | null | undefined;
  rate_limit?: number | null | undefined;
  alerts?: { enabled?: boolean | undefined; failures?: number | undefined; window_ms?: number | undefined } | null | undefined;
}

export interface WebhookView {
  consumer_id: string;
  url: string;
  method: string;
  format: Format;
  body: string | null;
  headers: Record<string, string>;
  auth: ReturnType<typeof credentialsView>['auth'];
  secret_header: ReturnType<typeof credentialsView>['secret_header'];
  signing: boolean;
  missing: MissingPolicy;
  retry: { schedule: string[] | null; max_age: string | null } | null;
  rate_limit: number | null;
  alerts: { enabled: boolean | null; failures: number | null; window: string | null } | null;
  timeout_ms: number;
  enabled: boolean;
  /** Why the bridge disabled it, if it did. */
  disabled_reason: string | null;
  health: {
    last_success_at: string | null;
    last_error: string | null;
    last_status: number | null;
    consecutive_failures: number;
    /** Failed attempts on the event the bridge is stuck on. */
    attempt: number;
    next_attempt_at: string | null;
    /** In a failing episode (alerts.ts). */
    failing: boolean;
  };
  created_at: string;
  updated_at: string;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function webhookView(row: WebhookRow): WebhookView {
  const options = parseOptions(row);
  const retry = options.retry_schedule_ms || options.retry_max_age_ms !== undefined;
  return {
    consumer_id: row.consumer_id,
    url: row.url,
    method: row.method,
    format: options.format ?? 'json',
    body: options.body ?? null,
    headers: JSON.parse(row.headers) as Record<string, string>,
    ...credentialsView(parseCredentials(row)),
    signing: options.signing ?? true,
    missing: options.missing ?? 'empty',
    retry: retry
      ? {
          schedule: options.retry_schedule_ms?.map(formatDuration) ?? null,
          max_age: options.retry_max_age_ms === undefined ? null : formatDuration(options.retry_max_age_ms),
        }
      : null,
    rate_limit: options.rate_limit ?? null,
    alerts: options.alerts
      ? {
          enabled: options.alerts.enabled ?? null,
          failures: options.alerts.failures ?? null,
          window: options.alerts.window_ms === undefined ? null : formatDuration(options.alerts.window_ms),
        }
      : null,
    timeout_ms: row.timeout_ms,
    enabled: row.enabled === 1,
    disabled_reason: row.disabled_reason,
    health: {
      last_success_at: iso(row.last_success_at),
      last_error: row.last_error,
      last_status: row.last_status,
      consecutive_failures: row.consecutive_failures,
      attempt: row.attempt,
      next_attempt_at: iso(row.next_attempt_at),
      failing: parseAlertState(row.alert_state).failing === true,
    },
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
  };
}

/** 1800000 → "30m": the largest unit that divides it. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export async function isPushMode(s: Services, consumerId: string): Promise<boolean> {
  return (await s.store.getWebhook(consumerId))?.enabled === 1;
}

export async function setWebhook(
  s: Services,
  consumerId: string,
  input: WebhookInput,
): Promise<{ row: WebhookRow; created: boolean; secret: string | null }> {
  await findConsumer(s, consumerId);
  await allowTarget(s, input.url);
  return saveWebhook(s, consumerId, (current) => {
    if (!current) return input;
    // Write-only fields a PUT leaves out stay as they were (they cannot be read back to resend).
    const credentials = parseCredentials(current);
    return {
      ...input,
      auth: input.auth === undefined ? credentials.auth : input.auth,
      secret_header: input.secret_header === undefined ? credentials.secret_header : input.secret_header,
    };
  });
}

/**
 * Changes some fields of an existing webhook (e.g. only `enabled`, as the ops page's switch
 * does); the others stay. The merge happens inside the write, so concurrent PATCHes of
 * different fields both take effect. Like a PUT, any change retries a waiting event at once.
 * The target is checked when it changes or the webhook is enabled, never to pause it.
 */
export async function patchWebhook(
  s: Services,
  consumerId: string,
  patch: { [K in keyof WebhookInput]?: WebhookInput[K] | undefined },
): Promise<{ row: WebhookRow; secret: string | null }> {
  await findConsumer(s, consumerId);
  const current = await s.store.getWebhook(consumerId);
  if (!current) throw new ApiError('not_found', 'this consumer has no webhook');
  if (patch.url !== undefined) await allowTarget(s, patch.url);
  else if (patch.enabled === true) await allowTarget(s, current.url);
  const { row, secret } = await saveWebhook(s, consumerId, (now) => {
    if (!now) throw new ApiError('not_found', 'this consumer has no webhook');
    return { ...inputOf(now), ...definedOnly(patch) } as WebhookInput;
  });
  return { row, secret };
}

/** A stored webhook as the input that would make it again (secret left out: it is kept). */
function inputOf(row: WebhookRow): WebhookInput {
  const options = parseOptions(row);
  const credentials = parseCredentials(row);
  return {
    url: row.url,
    headers: JSON.parse(row.headers) as Record<string, string>,
    method: row.method as Method,
    timeout_ms: row.timeout_ms,
    enabled: row.enabled === 1,
    format: options.format,
    body: options.body ?? null,
    auth: credentials.auth ?? null,
    secret_header: credentials.secret_header ?? null,
    signing: options.signing,
    missing: options.missing,
    retry: options.retry_schedule_ms || options.retry_max_age_ms !== undefined
      ? { schedule_ms: options.retry_schedule_ms, max_age_ms: options.retry_max_age_ms }
      : null,
    rate_limit: options.rate_limit ?? null,
    alerts: options.alerts ?? null,
  };
}

function definedOnly<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The stored form of an input's shape, or 400 naming the field and position. */
function shapeColumns(input: WebhookInput): { options: WebhookOptions; credentials: WebhookCredentials } {
  const options: WebhookOptions = {
    ...(input.format != null ? { format: input.format } : {}),
    ...(input.body != null ? { body: input.body } : {}),
    ...(input.signing !== undefined ? { signing: input.signing } : {}),
    ...(input.missing !== undefined ? { missing: input.missing } : {}),
    ...(input.retry?.schedule_ms ? { retry_schedule_ms: input.retry.schedule_ms } : {}),
    ...(input.retry?.max_age_ms !== undefined ? { retry_max_age_ms: input.retry.max_age_ms } : {}),
    ...(input.rate_limit != null ? { rate_limit: input.rate_limit } : {}),
    ...(input.alerts ? { alerts: definedOnly(input.alerts) } : {}),
  };
  const credentials: WebhookCredentials = {
    ...(input.auth ? { auth: input.auth } : {}),
    ...(input.secret_header ? { secret_header: input.secret_header } : {}),
  };
  const problem = checkShape({ url: input.url, method: input.method ?? 'POST', headers: input.headers ?? {}, options, credentials });
  if (problem) throw invalidField(problem.field, problem.message);
  return { options, credentials };
}

/** The URL the SSRF check sees: a template's tags filled with a stand-in (they never reach the host). */
export function urlForCheck(url: string): string {
  return hasTags(url) ? renderSample(compileTemplate(url, 'url')).text : url;
}

/** Refuses targets on private addresses (unless allowed): 400 target_not_allowed naming url. */
export async function allowTarget(s: Services, url: string): Promise<void> {
  if (s.config.allowPrivateTargets) return;
  try {
    await checkTarget(new URL(urlForCheck(url)), s.resolve);
  } catch (error) {
    if (!(error instanceof TargetNotAllowed)) throw error;
    throw new ApiError(
      'target_not_allowed',
      `url: ${error.message}; webhooks may not target loopback, private, link-local or metadata addresses ` +
        '(a gateway whose receivers are on such a network can allow them with POLLGATE_ALLOW_PRIVATE_TARGETS=1)',
      { field: 'url' },
    );
  }
}

/** The row an input makes, over the stored one (400 naming the field when its shape is wrong). */
function buildRow(consumerId: string, input: WebhookInput, current: WebhookRow | undefined, now: number): WebhookRow {
  const { options, credentials } = shapeColumns(input);
  const enabled = input.enabled ?? true;
  return {
    consumer_id: consumerId,
    // A template is kept as written (normalising would percent-encode its braces).
    url: hasTags(input.url) ? input.url : new URL(input.url).href,
    method: input.method ?? 'POST',
    headers: JSON.stringify(input.headers ?? {}),
    secret: input.secret ?? current?.secret ?? generateSecret(),
    timeout_ms: input.timeout_ms ?? DEFAULT_TIMEOUT_MS,
    enabled: enabled ? 1 : 0,
    // A new target or a re-enable starts delivering at once; history stays.
    attempt: 0,
    first_failure_at: null,
    next_attempt_at: null,
    last_success_at: current?.last_success_at ?? null,
    last_error: current?.last_error ?? null,
    last_status: current?.last_status ?? null,
    consecutive_failures: current?.consecutive_failures ?? 0,
    disabled_reason: enabled ? null : (current?.disabled_reason ?? null),
    options: JSON.stringify(options),
    credentials: JSON.stringify(credentials),
    alert_state: current?.alert_state ?? '{}',
    created_at: current?.created_at ?? now,
    updated_at: now,
  };
}

/**
 * The webhook a PATCH (or, without a stored one, a PUT) of `changes` would make, without
 * saving it: what previews and test sends try.
 */
export function draftWebhook(s: Services, consumerId: string, current: WebhookRow | undefined, changes: Partial<WebhookInput>): WebhookRow {
  const base: Partial<WebhookInput> = current ? inputOf(current) : {};
  const input = { ...base, ...definedOnly(changes) } as WebhookInput;
  if (input.url === undefined) throw invalidField('webhook.url', 'is required (this consumer has no webhook yet)');
  return buildRow(consumerId, input, current, s.clock.now());
}

/** Writes the webhook that `build` makes from the stored one, in one transaction. */
async function saveWebhook(
  s: Services,
  consumerId: string,
  build: (current: WebhookRow | undefined) => WebhookInput,
): Promise<{ row: WebhookRow; created: boolean; secret: string | null }> {
  const saved = await s.bridge.change(consumerId, () =>
    s.store.saveWebhook(consumerId, (_consumer, current) => buildRow(consumerId, build(current), current, s.clock.now())),
  );
  const { row, previous } = saved;
  if (row.enabled === 1) await endHeldPolls(s, consumerId, 'push_mode');
  return { row, created: !previous, secret: row.secret === previous?.secret ? null : row.secret };
}

export async function removeWebhook(s: Services, consumerId: string): Promise<void> {
  await s.bridge.change(consumerId, async () => {
    if (!(await s.store.deleteWebhook(consumerId))) throw new ApiError('not_found', 'this consumer has no webhook');
  });
}

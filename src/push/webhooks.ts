/**
 * Configuring a consumer's webhook (admin key): PUT creates or replaces it and, when enabled,
 * puts the consumer in push mode at its committed cursor; DELETE (or enabled:false) returns
 * it to pull mode at the cursor the bridge reached. The secret is shown only by the PUT that
 * sets or generates it.
 */
import { endHeldPolls, findConsumer } from '../consumers/consumers.ts';
import { ApiError } from '../errors.ts';
import type { Services } from '../services.ts';
import type { WebhookRow } from '../store/store.ts';
import { checkTarget, TargetNotAllowed } from './targets.ts';
import { generateSecret } from './signing.ts';

export interface WebhookInput {
  url: string;
  secret?: string | undefined;
  headers?: Record<string, string> | undefined;
  method?: 'POST' | 'PUT' | 'PATCH' | undefined;
  timeout_ms?: number | undefined;
  enabled?: boolean | undefined;
}

export interface WebhookView {
  consumer_id: string;
  url: string;
  method: string;
  headers: Record<string, string>;
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
  };
  created_at: string;
  updated_at: string;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function webhookView(row: WebhookRow): WebhookView {
  return {
    consumer_id: row.consumer_id,
    url: row.url,
    method: row.method,
    headers: JSON.parse(row.headers) as Record<string, string>,
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
    },
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
  };
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
  return saveWebhook(s, consumerId, () => input);
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
    return {
      url: patch.url ?? now.url,
      secret: patch.secret,
      headers: patch.headers ?? (JSON.parse(now.headers) as Record<string, string>),
      method: patch.method ?? (now.method as WebhookInput['method']),
      timeout_ms: patch.timeout_ms ?? now.timeout_ms,
      enabled: patch.enabled ?? now.enabled === 1,
    };
  });
  return { row, secret };
}

/** Refuses targets on private addresses (unless allowed): 400 target_not_allowed naming url. */
async function allowTarget(s: Services, url: string): Promise<void> {
  if (s.config.allowPrivateTargets) return;
  try {
    await checkTarget(new URL(url), s.resolve);
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

/** Writes the webhook that `build` makes from the stored one, in one transaction. */
async function saveWebhook(
  s: Services,
  consumerId: string,
  build: (current: WebhookRow | undefined) => WebhookInput,
): Promise<{ row: WebhookRow; created: boolean; secret: string | null }> {
  const saved = await s.bridge.change(consumerId, () =>
    s.store.saveWebhook(consumerId, (_consumer, current) => {
      const input = build(current);
      const enabled = input.enabled ?? true;
      const secret = input.secret ?? current?.secret ?? generateSecret();
      const now = s.clock.now();
      const row: WebhookRow = {
        consumer_id: consumerId,
        url: new URL(input.url).href,
        method: input.method ?? 'POST',
        headers: JSON.stringify(input.headers ?? {}),
        secret,
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
        created_at: current?.created_at ?? now,
        updated_at: now,
      };
      return row;
    }),
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

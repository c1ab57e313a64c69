/**
 * When a webhook's failures become worth telling someone: one episode at a time, debounced.
 *
 * - A webhook becomes *failing* when `failures` attempts failed within `window` (by default 3
 *   within a day, successes in between or not). The episode ends at its next 2xx: *recovered*.
 * - Each change is an alert (an event in the tenant's log, and a POST to POLLGATE_ALERT_URL), but
 *   a failing alert within `debounce` of the webhook's previous one is not sent, and neither is
 *   the recovered alert of that episode: a flapping endpoint makes at most one failing and one
 *   recovered alert per debounce period. Every recovered alert has a failing alert before it.
 * - The state is stored with the webhook and written in the same transaction as the alert's
 *   event, so an episode is told once, whatever restarts or node changes happen meanwhile.
 */
export interface AlertState {
  /** In a failing episode. */
  failing?: boolean;
  /** This episode's failing alert was sent (so its recovery is told too). */
  told?: boolean;
  /** Times of the latest failed attempts (at most `failures` of them). */
  failures?: number[];
  /** When the last failing alert was sent. */
  told_at?: number | null;
}

export interface AlertPolicy {
  enabled: boolean;
  failures: number;
  windowMs: number;
  debounceMs: number;
}

export type AlertKind = 'failing' | 'recovered';

export function parseAlertState(text: string): AlertState {
  return JSON.parse(text || '{}') as AlertState;
}

export function afterFailure(state: AlertState, policy: AlertPolicy, at: number): { state: AlertState; alert: AlertKind | null } {
  const failures = [...(state.failures ?? []).filter((t) => t > at - policy.windowMs), at].slice(-policy.failures);
  const next: AlertState = { ...state, failures };
  if (!policy.enabled || state.failing || failures.length < policy.failures) return { state: next, alert: null };
  const quiet = state.told_at == null || at - state.told_at >= policy.debounceMs;
  if (!quiet) return { state: { ...next, failing: true, told: false }, alert: null };
  return { state: { ...next, failing: true, told: true, told_at: at }, alert: 'failing' };
}

export function afterSuccess(state: AlertState): { state: AlertState; alert: AlertKind | null } {
  if (!state.failing) return { state, alert: null };
  const next: AlertState = { told_at: state.told_at ?? null, failures: [] };
  return { state: next, alert: state.told ? 'recovered' : null };
}

/** A disabled webhook's episode is over (its own alert, `disabled`, says so). */
export function afterDisabled(state: AlertState): AlertState {
  return { told_at: state.told_at ?? null, failures: [] };
}

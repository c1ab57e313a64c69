/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): the n-th consecutive failure waits a uniform random time in [0, min(max, initial·2^(n-1))].
 * Full jitter spreads a fleet of consumers that lost the gateway at the same moment, so a
 * restarted gateway is not hit by all of them at once. A server's Retry-After raises the
 * delay, never past `maxMs`.
 */
export interface BackoffOptions {
  /** Cap of the first delay (default 250 ms). */
  initialMs?: number;
  /** Largest cap (default 30 s). */
  maxMs?: number;
}

export const DEFAULT_BACKOFF = { initialMs: 250, maxMs: 30_000 } as const;

export function backoffDelay(
  attempt: number,
  opts: BackoffOptions = {},
  retryAfterMs: number | null = null,
  random: () => number = Math.random,
): number {
  const initial = opts.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const max = opts.maxMs ?? DEFAULT_BACKOFF.maxMs;
  const cap = Math.min(max, initial * 2 ** Math.min(Math.max(0, attempt - 1), 30));
  const jittered = Math.round(random() * cap);
  return retryAfterMs === null ? jittered : Math.min(max, Math.max(jittered, retryAfterMs));
}

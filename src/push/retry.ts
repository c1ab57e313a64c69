/**
 * When to try a failing event again: the configured schedule (the last delay repeating) with
 * ±20 % jitter so receivers recovering from an outage are not hit by every consumer at once;
 * a receiver's Retry-After wins, within [1 s, 1 h]. Never past the give-up deadline.
 */
const JITTER = 0.2;
const RETRY_AFTER_MIN_MS = 1_000;
const RETRY_AFTER_MAX_MS = 3_600_000;

export function retryDelay(
  schedule: readonly number[],
  failedAttempts: number,
  retryAfterMs: number | null,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== null) return Math.min(RETRY_AFTER_MAX_MS, Math.max(RETRY_AFTER_MIN_MS, retryAfterMs));
  const base = schedule[Math.min(failedAttempts, schedule.length) - 1] ?? schedule[0]!;
  return Math.round(base * (1 - JITTER + 2 * JITTER * random()));
}

/**
 * Bounded waiting in real time, shared by the tests: a pause, a deadline on a promise, polling
 * a condition until it holds, and a tracker for a request whose settlement a test inspects
 * without awaiting it. Nothing here waits without a limit, and no timer keeps the process
 * alive after the wait is over.
 *
 * Two condition pollers with their own messages, kept apart because tests were written
 * against each: waitFor(cond, ms, what) (performance.now, every 5 ms unless told, "…waiting
 * for: what") and waitUntil(cond, timeoutMs, describe) (Date.now, every 10 ms, "…waiting for
 * <describe()>").
 */

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves or rejects like the promise; rejects with message after ms (the timer never keeps the process alive). */
export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Awaits p, failing the test (instead of hanging it) with "<what>: no answer within <ms> ms"
 * when it takes longer than ms (a held poll on a FakeClock never expires by itself).
 */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return withTimeout(p, ms, `${what}: no answer within ${ms} ms`);
}

/** Polls cond every everyMs (default 5) ms until it holds; fails after ms. */
export async function waitFor(cond: () => Promise<boolean> | boolean, ms: number, what: string, everyMs = 5): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await sleep(everyMs);
  }
}

/** Polls cond every few ms (real time) until it holds; throws describing what was awaited. */
export async function waitUntil(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  describe: () => string = () => 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${describe()}`);
    await sleep(10);
  }
}

/** A request in flight whose settlement can be inspected without awaiting it. */
export interface Pending<T> {
  promise: Promise<T>;
  readonly settled: boolean;
}

export function track<T>(promise: Promise<T>): Pending<T> {
  const state = { settled: false };
  const tracked = promise.finally(() => {
    state.settled = true;
  });
  tracked.catch(() => {}); // inspected by the test; avoid unhandled-rejection noise
  return {
    promise: tracked,
    get settled() {
      return state.settled;
    },
  };
}

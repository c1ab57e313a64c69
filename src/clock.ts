/**
 * Time, injected. Everything that reads the time or waits goes through a Clock so tests can
 * drive hours of retries or retention in milliseconds (see test/support/fake-clock.ts).
 */
export interface Clock {
  /** Unix milliseconds. */
  now(): number;
  /** Calls fn after ms; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
};

/**
 * Fills pollgate's log before a scenario: arrays of 1000 events per POST /v1/events (the
 * batch path), a few requests in flight at once. Every answer must be a 201 with all the
 * events; the log's head must have grown by exactly `total`.
 */
import { ADMIN_KEY, readHead, type RunningServer } from './servers.ts';

/** One event as POST /v1/events takes it: tenant, type, data, id?. */
export type NewEvent = Record<string, unknown>;

export async function prefill(
  server: RunningServer,
  total: number,
  event: (i: number) => NewEvent,
  opts: { batch?: number; concurrency?: number } = {},
): Promise<{ ms: number; eventsPerS: number }> {
  const batch = opts.batch ?? 1000;
  const head0 = await readHead(server);
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    for (let from = next; from < total; from = next) {
      next += batch;
      const events = [];
      for (let i = from; i < Math.min(total, from + batch); i++) events.push(event(i));
      const res = await fetch(`${server.url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(events),
      });
      const text = await res.text();
      if (res.status !== 201) throw new Error(`prefill: POST /v1/events answered ${res.status}: ${text.slice(0, 300)}`);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 4 }, worker));
  const ms = performance.now() - t0;
  const appended = (await readHead(server)) - head0;
  if (appended !== total) throw new Error(`prefill: published ${total} events but the log grew by ${appended}`);
  return { ms, eventsPerS: (total / ms) * 1000 };
}

/**
 * Sends webhook failure alerts (`pollgate.webhook.failing` / `.disabled` / `.recovered`, the
 * events exactly as the tenant's log holds them) to the operator's POLLGATE_ALERT_URL, signed
 * with POLLGATE_ALERT_SECRET like any delivery.
 *
 * The tenant's log is the durable record; this is a notification: a few tries over about ten
 * minutes (1 s, 10 s, 1 min, 10 min), in memory, at most 1,000 waiting (the oldest give way),
 * one at a time. The operator chose the URL, so it may be on a private network.
 */
import type { Logger } from 'pino';
import { envelopeJson } from '../store/envelope.ts';
import type { EventRecord } from '../store/store.ts';
import type { Deliverer } from './deliver.ts';
import { signatureHeaders } from './signing.ts';

const RETRIES_MS = [1_000, 10_000, 60_000, 600_000];
const MAX_WAITING = 1_000;
const TIMEOUT_MS = 10_000;

export interface AlertSender {
  send(event: EventRecord): void;
  /** Stops retrying (an attempt in flight is cut). */
  close(): Promise<void>;
}

export function createAlertSender(opts: { url: string; secret: string; deliverer: Deliverer; logger: Logger }): AlertSender {
  const waiting: Array<{ event: EventRecord; tries: number }> = [];
  const stop = new AbortController();
  let running: Promise<void> | null = null;

  async function drain(): Promise<void> {
    while (waiting.length > 0 && !stop.signal.aborted) {
      const item = waiting[0]!;
      const body = envelopeJson(item.event);
      const outcome = await opts.deliverer.deliver(
        {
          method: 'POST',
          url: opts.url,
          headers: { 'content-type': 'application/json', ...signatureHeaders(opts.secret, item.event.id, Math.floor(Date.now() / 1000), body) },
          body,
          timeoutMs: TIMEOUT_MS,
        },
        stop.signal,
      );
      if (stop.signal.aborted) return;
      if (outcome.ok || item.tries >= RETRIES_MS.length) {
        if (!outcome.ok) {
          opts.logger.error({ event: item.event.id, type: item.event.type, error: outcome.error, status: outcome.status }, 'could not send an alert to POLLGATE_ALERT_URL; it stays in the tenant log');
        }
        waiting.shift();
        continue;
      }
      const delay = RETRIES_MS[item.tries++]!;
      opts.logger.warn({ event: item.event.id, error: outcome.error, status: outcome.status, retryInMs: delay }, 'alert URL failed; trying again');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        timer.unref();
        stop.signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
      });
    }
  }

  function start(): void {
    running ??= drain().finally(() => {
      running = null;
      // Sent while the loop was ending: go on.
      if (waiting.length > 0 && !stop.signal.aborted) start();
    });
  }

  return {
    send(event) {
      if (stop.signal.aborted) return;
      if (waiting.length >= MAX_WAITING) waiting.splice(1, 1); // the one in flight stays
      waiting.push({ event, tries: 0 });
      start();
    },
    async close() {
      stop.abort();
      await running;
    },
  };
}

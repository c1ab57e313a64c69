/**
 * The soak's producer: a steady rate of events to POST /v1/events, as single events and small
 * batches (2…10 events of mixed tenants), each event with a producer id `soak-<seq>` so that a
 * retried request is idempotent (the gateway answers the original envelopes).
 *
 * 1. Every 50 ms it sends what the rate asks for since the last tick; at most `maxInFlight`
 *    requests are open at once. When the gateway is slower than the rate, the backlog is
 *    capped at one second of events: the rate falls (and the soak reports it) instead of the
 *    producer piling up requests.
 * 2. A request that fails (no answer within 30 s, a dropped connection, 429/503/5xx) is sent
 *    again, same body, after the SDK's backoff (src/client/backoff.ts, Retry-After respected),
 *    until it gets its answer or the publisher is stopped. Any other 4xx is a bench bug and is
 *    recorded.
 * 3. An event is *acknowledged* when a 2xx answer carries its envelope: the soak then requires
 *    every consumer of its tenant to receive it. The envelope's cursor is kept (compared, never
 *    parsed: cursors are opaque).
 * 4. `data.sent` is the first send's CLOCK_MONOTONIC time (ms), which the poll fleet and the
 *    receivers subtract from their arrival times.
 */
import { backoffDelay } from '../../src/client/backoff.ts';
import { monoMs } from './raw-http.ts';
import { ADMIN_KEY, type RunningServer } from './servers.ts';

export interface PublishedEvent {
  tenant: string;
  /** The envelope's cursor once acknowledged, null before. */
  cursor: string | null;
}

export interface PublisherStats {
  /** Events acknowledged and requests answered 2xx since the previous stats. */
  events: number;
  requests: number;
  /** Requests sent again after a failure, by cause ("503", "network"…). */
  retries: Record<string, number>;
  /** Request send → 2xx answer, ms. */
  latency: { count: number; p50: number; p99: number; max: number };
  /** Events the rate asked for that the in-flight cap held back (dropped from the schedule). */
  shed: number;
  inFlight: number;
}

const TICK_MS = 50;
const REQUEST_TIMEOUT_MS = 30_000;

export interface PublisherOptions {
  /** Events per second. */
  rate: number;
  /** Picks the tenant of the next event. */
  tenant: () => string;
  maxInFlight?: number;
}

/** A deterministic generator (mulberry32), so a run's shape is reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quantile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}

export class SoakPublisher {
  /** Every event ever sent, by sequence number (index 0 unused: ids start at soak-1). */
  readonly events: PublishedEvent[] = [{ tenant: '', cursor: null }];
  /** 4xx answers other than 429: the bench sent something wrong. */
  readonly rejected: string[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private owed = 0;
  private lastTick = 0;
  private stopping = false;
  private readonly random = seededRandom(20261201);
  private readonly maxInFlight: number;
  private readonly requestsOpen = new Set<Promise<void>>();
  private statsEvents = 0;
  private statsRequests = 0;
  private retries: Record<string, number> = {};
  private latencies: number[] = [];
  private shed = 0;

  constructor(
    private readonly server: RunningServer,
    private readonly opts: PublisherOptions,
  ) {
    this.maxInFlight = opts.maxInFlight ?? 64;
  }

  start(): void {
    this.lastTick = monoMs();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /**
   * Stops sending new events and waits for every open request (with its retries) to end; after
   * graceMs the retries give up (those events stay unacknowledged and are not required).
   */
  async stop(graceMs = 60_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const giveUp = setTimeout(() => {
      this.stopping = true;
    }, graceMs);
    while (this.requestsOpen.size > 0) await Promise.all([...this.requestsOpen]);
    clearTimeout(giveUp);
    this.stopping = true;
  }

  /** Gives up on retries still going (the run is over or failed). */
  abandon(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.stopping = true;
  }

  acknowledged(): number {
    let n = 0;
    for (const e of this.events) if (e.cursor !== null) n += 1;
    return n;
  }

  stats(): PublisherStats {
    const sorted = this.latencies.sort((a, b) => a - b);
    const out: PublisherStats = {
      events: this.statsEvents,
      requests: this.statsRequests,
      retries: this.retries,
      latency: { count: sorted.length, p50: quantile(sorted, 50), p99: quantile(sorted, 99), max: sorted.at(-1) ?? Number.NaN },
      shed: this.shed,
      inFlight: this.inFlight,
    };
    this.statsEvents = this.statsRequests = this.shed = 0;
    this.retries = {};
    this.latencies = [];
    return out;
  }

  private tick(): void {
    const now = monoMs();
    this.owed += ((now - this.lastTick) / 1000) * this.opts.rate;
    this.lastTick = now;
    if (this.owed > this.opts.rate) {
      this.shed += Math.floor(this.owed - this.opts.rate);
      this.owed = this.opts.rate;
    }
    while (this.owed >= 1 && this.inFlight < this.maxInFlight) {
      // 6 requests in 10 carry one event, the others 2…10.
      const size = this.random() < 0.6 ? 1 : 2 + Math.floor(this.random() * 9);
      const n = Math.min(size, Math.floor(this.owed));
      this.owed -= n;
      this.send(n);
    }
  }

  private send(n: number): void {
    const sent = monoMs();
    const batch = Array.from({ length: n }, () => {
      const seq = this.events.length;
      const tenant = this.opts.tenant();
      this.events.push({ tenant, cursor: null });
      return { seq, tenant };
    });
    const body = batch.map(({ seq, tenant }) => ({
      id: `soak-${seq}`,
      tenant,
      type: 'ticket.updated',
      data: { seq, sent, ticketId: `tk_${(0x10000 + seq * 7919).toString(16)}`, priority: seq % 3 === 0 ? 'urgent' : 'normal' },
    }));
    const text = JSON.stringify(n === 1 ? body[0] : body);
    this.inFlight += 1;
    const open = this.deliver(text, batch.map((b) => b.seq)).finally(() => {
      this.inFlight -= 1;
      this.requestsOpen.delete(open);
    });
    this.requestsOpen.add(open);
  }

  private async deliver(text: string, seqs: number[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.stopping) return;
      const t0 = monoMs();
      let cause: string;
      let retryAfterMs: number | null = null;
      try {
        const res = await fetch(`${this.server.url}/v1/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
          body: text,
          signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        });
        const answer = await res.text();
        if (res.status >= 200 && res.status < 300) {
          this.latencies.push(monoMs() - t0);
          this.accept(answer, seqs);
          return;
        }
        if (res.status !== 429 && res.status < 500) {
          this.rejected.push(`${res.status} ${answer.slice(0, 200)}`);
          return;
        }
        cause = String(res.status);
        const retryAfter = Number(res.headers.get('retry-after') ?? Number.NaN);
        if (Number.isFinite(retryAfter)) retryAfterMs = retryAfter * 1000;
      } catch (error) {
        cause = (error as Error).name === 'TimeoutError' ? 'timeout' : 'network';
      }
      this.retries[cause] = (this.retries[cause] ?? 0) + 1;
      await new Promise((r) => setTimeout(r, backoffDelay(attempt, {}, retryAfterMs)));
    }
  }

  private accept(answer: string, seqs: number[]): void {
    const parsed = JSON.parse(answer) as { id?: string; cursor?: string; events?: Array<{ id: string; cursor: string }> };
    const envelopes = parsed.events ?? [parsed as { id: string; cursor: string }];
    for (const [i, seq] of seqs.entries()) {
      const e = envelopes[i];
      if (e?.id !== `soak-${seq}` || typeof e.cursor !== 'string') {
        this.rejected.push(`answer #${i} for soak-${seq} is ${JSON.stringify(e)?.slice(0, 200)}`);
        continue;
      }
      this.events[seq]!.cursor = e.cursor;
    }
    this.statsEvents += seqs.length;
    this.statsRequests += 1;
  }
}

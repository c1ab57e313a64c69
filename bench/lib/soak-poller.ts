/**
 * The soak's long-poll fleet, its own process (driven over IPC by bench/soak.ts): one raw
 * keep-alive socket per consumer (lib/raw-http.ts), each consumer polling without end the way
 * a real one does: GET /v1/events?wait=W&limit=L&ack=<cursor of its previous answer>, the next
 * poll sent as soon as an answer arrives, so every poll stays held while events keep coming.
 *
 * 1. The first polls ask for waits spread over 1…W seconds, so 10,000 polls do not all time
 *    out in the same second afterwards (a real fleet is not in step either).
 * 2. Every event received is recorded per consumer by its sequence number (the producer id
 *    `soak-<seq>` the publisher gave it), so the soak can prove afterwards that each
 *    acknowledged publish reached the consumer of its tenant; a repeat (at-least-once) is
 *    counted, not an error.
 * 3. Latency = arrival of the answer's last byte − `data.sent`, the publisher's CLOCK_MONOTONIC
 *    time of the publish request, one clock for every process on the machine.
 * 4. A dropped connection or an answer other than 200 is counted by status; the consumer
 *    reconnects and polls again after the SDK's backoff (exponential, full jitter, Retry-After
 *    respected: src/client/backoff.ts), acking the last cursor it holds (so a lost answer only
 *    means the same events come again). A fleet that retried in step would keep a struggling
 *    server down; real consumers spread out like this.
 *
 * Ops (answered with the same id):
 *   init  {port, keys, waitS, limit}   one slot per consumer key, in that order
 *   start                              connect every slot and send its first poll
 *   stats                              counters since the previous stats, and polls in flight
 *   total                              distinct events received so far (all consumers)
 *   received                           per slot: the sequence numbers, first arrivals in order
 *   close                              close every socket and exit
 */
import { backoffDelay } from '../../src/client/backoff.ts';
import { serveParent } from './ipc.ts';
import { monoMs, RawConnection, type RawResponse } from './raw-http.ts';

interface Slot {
  key: string;
  conn: RawConnection;
  /** Cursor of the last 200 answer: acked by the next poll. */
  cursor: string | null;
  /** A poll is written and not answered. */
  inFlight: boolean;
  /** Failed polls in a row (the backoff's attempt number). */
  failures: number;
  seen: Set<number>;
  order: number[];
}

export interface PollerStats {
  /** Answers by HTTP status ("0": the connection dropped). */
  statuses: Record<string, number>;
  /** 200 answers with at least one event / with none (the wait ran out). */
  pages: number;
  emptyPages: number;
  /** First arrivals of events, and repeats of events already received. */
  events: number;
  repeats: number;
  /** Events whose id is not a soak publish (counted, not checked). */
  foreign: number;
  latency: { count: number; p50: number; p99: number; max: number };
  reconnects: number;
  /** Polls written and not yet answered, right now. */
  inFlight: number;
  /** The first few odd answers (not 200, or a body that does not parse). */
  oddSample: string[];
}

const CONNECT_CONCURRENCY = 200;

let slots: Slot[] = [];
let port = 0;
let waitS = 25;
let limit = 100;
let closing = false;

let statuses: Record<string, number> = {};
let pages = 0;
let emptyPages = 0;
let events = 0;
let repeats = 0;
let foreign = 0;
let latencies: number[] = [];
let reconnects = 0;
let oddSample: string[] = [];
let distinctTotal = 0;

function pollRequest(slot: Slot, wait: number): string {
  const ack = slot.cursor ? `&ack=${encodeURIComponent(slot.cursor)}` : '';
  return `GET /v1/events?wait=${wait}&limit=${limit}${ack} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${slot.key}\r\n\r\n`;
}

function send(slot: Slot, wait: number): void {
  if (closing) return;
  slot.inFlight = true;
  slot.conn.send(pollRequest(slot, wait), (r) => onAnswer(slot, r));
}

function odd(text: string): void {
  if (oddSample.length < 5) oddSample.push(text.slice(0, 300));
}

function onAnswer(slot: Slot, r: RawResponse): void {
  slot.inFlight = false;
  if (closing) return;
  statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  if (r.status === 200 && record(slot, r)) {
    slot.failures = 0;
    send(slot, waitS);
    return;
  }
  if (r.status !== 200) odd(`${r.status} ${r.body}`);
  // Dropped, refused or odd: back off, reconnect if needed, poll again with the cursor it holds.
  retryLater(slot, r.headers['retry-after']);
}

function retryLater(slot: Slot, retryAfter?: string): void {
  slot.failures += 1;
  const retryAfterMs = retryAfter !== undefined && Number.isFinite(Number(retryAfter)) ? Number(retryAfter) * 1000 : null;
  setTimeout(() => void again(slot), backoffDelay(slot.failures, {}, retryAfterMs));
}

async function again(slot: Slot): Promise<void> {
  if (closing) return;
  try {
    if (!slot.conn.connected) {
      reconnects += 1;
      await slot.conn.connect();
    }
    send(slot, waitS);
  } catch (error) {
    odd(`reconnect: ${(error as Error).message}`);
    retryLater(slot);
  }
}

/** Records a 200 page; false when its body is not a page (counted as odd). */
function record(slot: Slot, r: RawResponse): boolean {
  let page: { events?: Array<{ id?: unknown; data?: { sent?: unknown } }>; cursor?: unknown };
  try {
    page = JSON.parse(r.body) as typeof page;
  } catch {
    odd(`200 not JSON: ${r.body}`);
    return false;
  }
  if (!Array.isArray(page.events) || typeof page.cursor !== 'string') {
    odd(`200 not a page: ${r.body}`);
    return false;
  }
  slot.cursor = page.cursor;
  if (page.events.length === 0) emptyPages += 1;
  else pages += 1;
  for (const e of page.events) {
    const seq = typeof e.id === 'string' && e.id.startsWith('soak-') ? Number(e.id.slice(5)) : Number.NaN;
    if (!Number.isInteger(seq)) {
      foreign += 1;
      continue;
    }
    if (slot.seen.has(seq)) {
      repeats += 1;
      continue;
    }
    slot.seen.add(seq);
    slot.order.push(seq);
    events += 1;
    distinctTotal += 1;
    if (typeof e.data?.sent === 'number') latencies.push(r.at - e.data.sent);
  }
  return true;
}

function quantile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1]!;
}

function takeStats(): PollerStats {
  const sorted = latencies.sort((a, b) => a - b);
  const out: PollerStats = {
    statuses,
    pages,
    emptyPages,
    events,
    repeats,
    foreign,
    latency: { count: sorted.length, p50: quantile(sorted, 50), p99: quantile(sorted, 99), max: sorted.at(-1) ?? Number.NaN },
    reconnects,
    inFlight: slots.filter((s) => s.inFlight).length,
    oddSample,
  };
  statuses = {};
  pages = emptyPages = events = repeats = foreign = reconnects = 0;
  latencies = [];
  oddSample = [];
  return out;
}

async function start(): Promise<{ polls: number; ms: number }> {
  const t0 = monoMs();
  for (let i = 0; i < slots.length; i += CONNECT_CONCURRENCY) {
    const batch = slots.slice(i, i + CONNECT_CONCURRENCY);
    await Promise.all(batch.map((s) => s.conn.connect()));
    // Spread the first deadlines over 1…waitS seconds (see 1. above).
    for (const [j, s] of batch.entries()) send(s, Math.max(1, Math.round((((i + j) * 7919) % (waitS * 100)) / 100)));
  }
  return { polls: slots.length, ms: monoMs() - t0 };
}

type Message =
  | { id: number; op: 'init'; port: number; keys: string[]; waitS: number; limit: number }
  | { id: number; op: 'start' }
  | { id: number; op: 'stats' }
  | { id: number; op: 'total' }
  | { id: number; op: 'received' }
  | { id: number; op: 'close' };

async function handle(msg: Message): Promise<unknown> {
  switch (msg.op) {
    case 'init':
      port = msg.port;
      waitS = msg.waitS;
      limit = msg.limit;
      slots = msg.keys.map((key) => ({ key, conn: new RawConnection(port, ['retry-after']), cursor: null, inFlight: false, failures: 0, seen: new Set(), order: [] }));
      return { polls: slots.length };
    case 'start':
      return start();
    case 'stats':
      return takeStats();
    case 'total':
      return { distinct: distinctTotal };
    case 'received':
      return { order: slots.map((s) => s.order) };
    case 'close':
      closing = true;
      for (const s of slots) s.conn.close();
      setImmediate(() => process.exit(0));
      return {};
  }
}

serveParent(handle);

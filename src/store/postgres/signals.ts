/**
 * Hints between the nodes of one deployment over LISTEN/NOTIFY (SCALE-OUT §2).
 *
 * 1. A hint is sent only after the commit it announces, never inside the append transaction
 *    (a committing NOTIFY takes a cluster-wide lock through the commit's flush): announcements
 *    made in one event-loop turn are folded into one NOTIFY, sent as a single autocommit
 *    statement on a pool connection with synchronous_commit off (a hint needs no fsync).
 * 2. The payload is {n: node, h: {tenant: head}, p: {consumer: generation}}, kept under
 *    PostgreSQL's 8000-byte limit by splitting into several notifications.
 * 3. One dedicated connection (not from the pool, never through a transaction-pooling proxy)
 *    LISTENs. When it drops (server restart, pg_terminate_backend, network) it reconnects with
 *    backoff and, after every successful LISTEN but the first, calls the onReconnect handlers:
 *    hints may have been missed, so the receivers reconcile against the log.
 * 4. A hint may be lost or late; it is never the truth. Failures to send are logged, not thrown.
 *    A node ignores its own hints (it woke its own polls when it committed).
 */
import pg from 'pg';
import type { Pool } from 'pg';
import type { Logger } from 'pino';
import type { PollStart, Signals } from '../store.ts';
import { clientConfig } from './pool.ts';

export const CHANNEL = 'pollgate';
/** PostgreSQL refuses payloads of 8000 bytes or more; leave room for the envelope. */
const MAX_PAYLOAD_BYTES = 7_900;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;

interface Payload {
  n: string;
  h?: Record<string, number>;
  p?: Record<string, number>;
}

export interface PgSignals extends Signals {
  /** Resolves after the first LISTEN attempt (whether or not it succeeded; it retries on its own). */
  readonly started: Promise<void>;
  /** Sends what is queued now instead of at the end of the turn; resolves when sent (or failed). */
  flush(): Promise<void>;
  /** The backend pid of the LISTEN connection (null while disconnected); for tests and ops. */
  listenerPid(): number | null;
}

export function createSignals(deps: { pool: Pool; url: string; nodeId: string; logger: Logger }): PgSignals {
  const { pool, url, nodeId, logger } = deps;
  const headHandlers: Array<(heads: Map<string, number>) => void> = [];
  const pollHandlers: Array<(start: PollStart) => void> = [];
  const reconnectHandlers: Array<() => void> = [];

  let closed = false;
  let client: pg.Client | null = null;
  let pid: number | null = null;
  let everListened = false;
  let backoff = BACKOFF_MIN_MS;
  let retryTimer: NodeJS.Timeout | null = null;

  // --- sending -------------------------------------------------------------------------
  let heads = new Map<string, number>();
  let polls = new Map<string, number>();
  let scheduled = false;
  let sending: Promise<void> = Promise.resolve();

  function schedule(): void {
    if (scheduled || closed) return;
    scheduled = true;
    setImmediate(() => void send());
  }

  function send(): Promise<void> {
    scheduled = false;
    if (heads.size === 0 && polls.size === 0) return sending;
    const payloads = split(nodeId, heads, polls);
    heads = new Map();
    polls = new Map();
    // Autocommit: the statement is its own small transaction; set_config(…, true) is SET LOCAL.
    const sent = pool
      .query(
        "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, p) FROM unnest($2::text[]) AS p",
        [CHANNEL, payloads],
      )
      .then(
        () => undefined,
        (error: unknown) => logger.debug({ err: error }, 'postgres: a wake-up hint was not sent (receivers reconcile)'),
      );
    sending = sending.then(() => sent);
    return sending;
  }

  // --- listening -----------------------------------------------------------------------
  function onNotification(msg: pg.Notification): void {
    if (msg.channel !== CHANNEL || !msg.payload) return;
    let payload: Payload;
    try {
      payload = JSON.parse(msg.payload) as Payload;
    } catch {
      return;
    }
    if (payload.n === nodeId) return;
    if (payload.h) {
      const map = new Map(Object.entries(payload.h));
      if (map.size > 0) for (const fn of headHandlers) safely(() => fn(map));
    }
    if (payload.p) {
      for (const [consumerId, generation] of Object.entries(payload.p)) {
        for (const fn of pollHandlers) safely(() => fn({ consumerId, generation }));
      }
    }
  }

  function safely(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      logger.error({ err: error }, 'postgres: a signal handler failed');
    }
  }

  async function connect(): Promise<void> {
    retryTimer = null;
    if (closed) return;
    const c = new pg.Client(clientConfig({ url, nodeId: `${nodeId}/listen` }));
    let dropped = false;
    const drop = (error?: unknown) => {
      if (dropped) return;
      dropped = true;
      if (client === c) {
        client = null;
        pid = null;
      }
      c.removeAllListeners('notification');
      void c.end().catch(() => {});
      if (closed) return;
      logger.warn({ err: error }, 'postgres: the LISTEN connection dropped; reconnecting');
      reconnectLater();
    };
    c.on('error', (error) => drop(error));
    c.on('end', () => drop());
    c.on('notification', onNotification);
    try {
      await c.connect();
      const r = await c.query<{ pid: number }>(`LISTEN ${CHANNEL}; SELECT pg_backend_pid() AS pid`);
      if (closed || dropped) {
        if (!dropped) {
          dropped = true;
          void c.end().catch(() => {});
        }
        return;
      }
      client = c;
      const rows = (Array.isArray(r) ? r[r.length - 1] : r) as pg.QueryResult<{ pid: number }>;
      pid = rows.rows[0]?.pid ?? null;
      backoff = BACKOFF_MIN_MS;
      const again = everListened;
      everListened = true;
      if (again) {
        logger.info('postgres: listening again; reconciling');
        for (const fn of reconnectHandlers) safely(fn);
      }
    } catch (error) {
      if (!dropped) {
        dropped = true;
        c.removeAllListeners('notification');
        void c.end().catch(() => {});
        if (!closed) {
          logger.warn({ err: error }, 'postgres: cannot LISTEN; retrying');
          // Whether it ever listened or not, hints may have been missed since the store opened.
          everListened = true;
          reconnectLater();
        }
      }
    }
  }

  function reconnectLater(): void {
    if (closed || retryTimer) return;
    const delay = backoff;
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    retryTimer = setTimeout(() => void connect(), delay * (0.8 + Math.random() * 0.4));
    retryTimer.unref();
  }

  const started = connect();

  return {
    started,
    announceHeads(next) {
      if (closed) return;
      for (const [tenant, head] of next) if (head > (heads.get(tenant) ?? 0)) heads.set(tenant, head);
      schedule();
    },
    announcePoll(start) {
      if (closed) return;
      if (start.generation > (polls.get(start.consumerId) ?? 0)) polls.set(start.consumerId, start.generation);
      schedule();
    },
    onHeads(fn) {
      headHandlers.push(fn);
    },
    onPoll(fn) {
      pollHandlers.push(fn);
    },
    onReconnect(fn) {
      reconnectHandlers.push(fn);
    },
    flush: () => send(),
    listenerPid: () => pid,
    async close() {
      if (closed) return;
      await send();
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      const c = client;
      client = null;
      pid = null;
      if (c) {
        c.removeAllListeners('notification');
        await c.end().catch(() => {});
      }
    },
  };
}

/** Payloads of at most MAX_PAYLOAD_BYTES each, covering every entry once. */
export function split(nodeId: string, heads: ReadonlyMap<string, number>, polls: ReadonlyMap<string, number>): string[] {
  const out: string[] = [];
  let current: Payload = { n: nodeId };
  let size = Buffer.byteLength(JSON.stringify(current)) + 16; // room for the two object keys
  let empty = true;
  const add = (kind: 'h' | 'p', key: string, value: number) => {
    const entry = Buffer.byteLength(JSON.stringify(key)) + String(value).length + 2;
    if (!empty && size + entry > MAX_PAYLOAD_BYTES) {
      out.push(JSON.stringify(current));
      current = { n: nodeId };
      size = Buffer.byteLength(JSON.stringify(current)) + 16;
      empty = true;
    }
    (current[kind] ??= {})[key] = value;
    size += entry;
    empty = false;
  };
  for (const [tenant, head] of heads) add('h', tenant, head);
  for (const [consumer, generation] of polls) add('p', consumer, generation);
  if (!empty) out.push(JSON.stringify(current));
  return out;
}

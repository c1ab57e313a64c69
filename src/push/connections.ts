/**
 * Connections to webhook receivers: one socket (an undici Client) per attempt in flight, never
 * shared between two attempts, so nothing one webhook does can hold up another.
 *
 * Why not one shared Agent (a Pool of at most N Clients per origin): when the client refuses a
 * request while dispatching it (a header it cannot send), the Pool marks the Client it chose as
 * "needs drain", and that Client, having nothing in flight, never drains. After N refusals the
 * Pool has no Client left to hand out and queues every later request to that origin for good,
 * another tenant's healthy webhook on the same receiver included; and an abort only notes its
 * reason on a request still in that queue, so the attempt never settled (and with it a change
 * to the webhook, and shutdown). Here the accounting is ours and balances on every path:
 *
 * 1. take(origin) gives an attempt a Client of its own: an idle one kept for that origin
 *    (keep-alive reuse) or a new one. There is no cap per origin: the bridge's concurrency
 *    bounds the attempts in flight, and so the connections.
 * 2. release() after a complete exchange keeps the Client for the next attempt to the origin
 *    (at most MAX_IDLE_PER_ORIGIN of them, each for at most IDLE_MS).
 * 3. discard() after anything else (an error, a timeout, a shutdown) destroys the Client: its
 *    socket closes and whatever undici still holds for it settles with an error.
 * 4. close() destroys every Client, in use or idle.
 */
import { Client } from 'undici';

/** How long an idle connection is kept for the next attempt to its origin. */
const IDLE_MS = 30_000;
const MAX_IDLE_PER_ORIGIN = 64;

export interface Connections {
  take(origin: string): Client;
  release(client: Client): void;
  discard(client: Client): void;
  close(): Promise<void>;
  /** Connections in use by an attempt, and kept idle. */
  stats(): { busy: number; idle: number };
}

interface Idle {
  client: Client;
  timer: NodeJS.Timeout;
}

export function createConnections(opts: { connect?: Client.Options['connect'] }): Connections {
  const idle = new Map<string, Idle[]>();
  const busy = new Map<Client, string>();
  let closed = false;

  const destroy = (client: Client): Promise<void> => client.destroy().catch(() => {});

  function forgetIdle(origin: string, entry: Idle): void {
    const list = idle.get(origin);
    if (!list) return;
    const at = list.indexOf(entry);
    if (at !== -1) list.splice(at, 1);
    if (list.length === 0) idle.delete(origin);
  }

  return {
    take(origin) {
      if (closed) throw new Error('the connections to webhook receivers are closed (stopping)');
      const list = idle.get(origin);
      let client: Client | undefined;
      while (!client && list && list.length > 0) {
        const entry = list.pop()!;
        clearTimeout(entry.timer);
        if (!entry.client.destroyed && !entry.client.closed) client = entry.client;
      }
      if (list?.length === 0) idle.delete(origin);
      client ??= new Client(origin, {
        ...(opts.connect ? { connect: opts.connect } : {}),
        keepAliveTimeout: IDLE_MS,
        pipelining: 1,
      });
      busy.set(client, origin);
      return client;
    },

    release(client) {
      const origin = busy.get(client);
      if (origin === undefined) return;
      busy.delete(client);
      if (closed || client.destroyed || client.closed) return void destroy(client);
      let list = idle.get(origin);
      if (!list) idle.set(origin, (list = []));
      if (list.length >= MAX_IDLE_PER_ORIGIN) {
        const oldest = list.shift()!;
        clearTimeout(oldest.timer);
        void destroy(oldest.client);
      }
      const entry: Idle = {
        client,
        timer: setTimeout(() => {
          forgetIdle(origin, entry);
          void destroy(client);
        }, IDLE_MS),
      };
      entry.timer.unref();
      list.push(entry);
    },

    discard(client) {
      busy.delete(client);
      void destroy(client);
    },

    async close() {
      closed = true;
      const all = [...busy.keys()];
      busy.clear();
      for (const list of idle.values()) {
        for (const entry of list) {
          clearTimeout(entry.timer);
          all.push(entry.client);
        }
      }
      idle.clear();
      await Promise.all(all.map(destroy));
    },

    stats() {
      let idleCount = 0;
      for (const list of idle.values()) idleCount += list.length;
      return { busy: busy.size, idle: idleCount };
    },
  };
}

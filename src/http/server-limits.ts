/**
 * What the Node HTTP server allows one client, so that no client can hold the edge:
 *
 * 1. A request's headers must arrive within POLLGATE_HEADERS_TIMEOUT and the whole request
 *    (its body included) within POLLGATE_REQUEST_TIMEOUT, both counted from its first byte;
 *    then Node answers 408 and closes. Node checks only requests still arriving: a held poll
 *    has been received in full, so its wait (up to POLLGATE_MAX_WAIT) is never cut.
 * 2. An idle keep-alive connection is closed after POLLGATE_KEEP_ALIVE_TIMEOUT.
 * 3. At most POLLGATE_MAX_CONNECTIONS connections are open at once (held polls count); more
 *    are closed as they arrive. The cap is lowered to leave file descriptors for the database,
 *    webhook deliveries and logs when the process's open-file limit is lower.
 * 4. A body the route did not read to its end (a 413, a 401 before the body) is read on and
 *    dropped by Node until the request is complete or its time is up: closing earlier would
 *    reset the connection and the client would lose our answer.
 */
import { readFileSync } from 'node:fs';
import type { Server, ServerOptions } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';

type Limits = Pick<Config, 'maxConnections' | 'headersTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs' | 'pushConcurrency' | 'databasePoolSize'>;

/** Options for @hono/node-server's serve(). */
export function serverOptions(config: Limits): { serverOptions: ServerOptions; autoCleanupIncoming: false } {
  return {
    serverOptions: {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      // Node looks for late requests at this interval (30 s by default): often enough that a
      // timeout is enforced within a quarter of its length, at most once a second.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(config.headersTimeoutMs / 4))),
    },
    // The adapter's own clean-up cuts an unread body 500 ms after the answer; Node's reading
    // on until the request timeout (4. above) lets a slow sender still read a 413.
    autoCleanupIncoming: false,
  };
}

/** Descriptors kept for everything but client connections: the database, webhooks, logs, the runtime. */
const RESERVED_FILES = 64;

/** Caps the server's connections; answers the cap in force. */
export function capConnections(server: Server, config: Limits, logger: Logger, fileLimit = openFileLimit()): number {
  let cap = config.maxConnections;
  if (fileLimit !== null) {
    const room = fileLimit - RESERVED_FILES - config.pushConcurrency - config.databasePoolSize;
    const fits = Math.max(16, room);
    if (fits < cap) {
      logger.warn(
        { configured: cap, cap: fits, openFileLimit: fileLimit },
        'POLLGATE_MAX_CONNECTIONS lowered to fit the open-file limit (raise it with ulimit -n / LimitNOFILE)',
      );
      cap = fits;
    }
  }
  server.maxConnections = cap;
  return cap;
}

/** The process's open-file limit where the system tells it (Linux), else null. */
function openFileLimit(): number | null {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!line || line[1] === 'unlimited') return null;
    return Number(line[1]);
  } catch {
    return null;
  }
}

/**
 * The server's logger: JSON lines for machines, readable lines for people.
 *
 * 1. stdout a terminal (or POLLGATE_LOG_FORMAT=pretty): one readable line per record with a
 *    local time, the level and the message, fields after it (pino-pretty). Otherwise (a pipe, a
 *    file, a log shipper) JSON lines with epoch-ms times, as log systems expect.
 * 2. JSON lines are written in batches (log-batch.ts): the lines of one event-loop turn go out
 *    in one write at the end of it, never later, and a failed write drops its lines instead
 *    of retrying: at exit nothing is left to spin on when stdout is gone (log shipper dead).
 * 3. Secrets are never logged; if one ever slipped into a record's fields it is masked.
 *    requestLogger() is the exception that proves it: the per-request line has fixed fields
 *    (request id, method, path, status, time), none of them ever a key, header, query string
 *    or body, so it skips the masking, which costs several times the line itself.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { batchedWriter } from './log-batch.ts';

export function createLogger(level: string, format: 'auto' | 'json' | 'pretty', isTTY = process.stdout.isTTY === true): Logger {
  const options = {
    level,
    base: { service: 'pollgate' },
    redact: { paths: ['key', 'secret', 'adminKey', '*.key', '*.secret', '*.authorization', 'headers.authorization'], censor: '[redacted]' },
  };
  if (format === 'pretty' || (format === 'auto' && isTTY)) {
    return pino(
      options,
      pretty({ sync: true, destination: 1, colorize: isTTY, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', singleLine: true }),
    );
  }
  return pino(options, batchedWriter(1));
}

/**
 * A logger for the one line per request only: the same destination, level and bindings as
 * `logger`, without masking (see 3. above). Give it nothing but the request line's fields.
 */
export function requestLogger(logger: Logger): Logger {
  const stream = (logger as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym];
  if (!stream) return logger;
  return pino({ level: logger.level, base: null }, stream).child(logger.bindings());
}

/**
 * The server's logger: JSON lines for machines, readable lines for people.
 *
 * 1. stdout a terminal (or POLLGATE_LOG_FORMAT=pretty): one readable line per record with a
 *    local time, the level and the message, fields after it (pino-pretty). Otherwise (a pipe, a
 *    file, a log shipper) JSON lines with epoch-ms times, as log systems expect.
 * 2. Writes are synchronous: nothing is buffered at exit, so a closed stdout (log shipper gone)
 *    drops log lines instead of spinning the exit-time flush on EPIPE forever.
 * 3. Secrets are never logged; if one ever slipped into a record's fields it is masked.
 */
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

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
  return pino(options, pino.destination({ dest: 1, sync: true }));
}

/**
 * What `tail` and `forward` share, in the client package and behind `pollgate tail|forward`:
 * flags parsed with node:util parseArgs, where the gateway is and which key to use (flag, then
 * environment variable), usage errors (exit 2) apart from runtime errors, log lines on stderr,
 * and stopping on SIGINT/SIGTERM.
 */
import type { ParseArgsConfig } from 'node:util';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export type Env = Record<string, string | undefined>;

/** Bad input on the command line: exit 2, with the message and a pointer to --help. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface Connection {
  url: string;
  key: string;
}

/** A command: `name` is how the user called it ("pollgate tail", "pollgate-client forward"). */
export interface CommandContext {
  name: string;
  env: Env;
}

export type Options = NonNullable<ParseArgsConfig['options']>;

export const CONNECTION_OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export const CONNECTION_HELP =
  `  --url <url>         the gateway (default: $POLLGATE_URL, else ${DEFAULT_URL})\n` +
  '  --key <key>         the consumer key (pgk_…) (default: $POLLGATE_KEY)\n' +
  '  -h, --help          display help for command\n';

/** Runs node:util parseArgs, its errors (unknown option, missing value) as usage errors. */
export function asUsage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function connection(opts: { url?: string | undefined; key?: string | undefined }, env: Env): Connection {
  const url = opts.url ?? (env.POLLGATE_URL || DEFAULT_URL);
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new UsageError(`--url: "${url}" is not an http:// or https:// URL`);
  }
  const key = opts.key ?? env.POLLGATE_KEY;
  if (!key) {
    throw new UsageError('no consumer key: pass --key or set POLLGATE_KEY (shown once when the consumer was created or its key rotated)');
  }
  return { url, key };
}

export function parseSeconds(text: string, flag: string): number {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new UsageError(`${flag}: "${text}" is not a number of seconds`);
  return Number(text);
}

export function parseInteger(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) throw new UsageError(`${flag}: "${text}" must be an integer from ${min} to ${max}`);
  return n;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "500ms", "10s", "5m", "1h" (a bare number is seconds) → ms. */
export function parseDuration(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new UsageError(`${flag}: "${text}" is not a duration (write e.g. 500ms, 10s, 5m)`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 's']!);
}

/** Writes and waits until the stream took it (so "printed" means printed before an ack). */
export function write(stream: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

export function logLine(text: string): void {
  process.stderr.write(`${new Date().toISOString()} ${text}\n`);
}

/**
 * SIGINT/SIGTERM: the first asks the command to stop (`stop` aborts), a second one means
 * "now" (`force` aborts). dispose() removes the handlers.
 */
export function stopSignals(): { stop: AbortSignal; force: AbortSignal; dispose(): void } {
  const stop = new AbortController();
  const force = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (!stop.signal.aborted) stop.abort(new Error(signal));
    else force.abort(new Error(signal));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    stop: stop.signal,
    force: force.signal,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

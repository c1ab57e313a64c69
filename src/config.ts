/**
 * Configuration: POLLGATE_* environment variables and the matching command-line flags
 * (--data-dir for POLLGATE_DATA_DIR, ...); a flag wins over the variable. The defaults run
 * out of the box. Only the entry point reads process.env; everything else gets a Config.
 */
import { parseArgs } from 'node:util';
import { secretProblem } from './client/signing.ts';

export interface Config {
  dataDir: string;
  host: string;
  port: number;
  /** Unset: generated on first start and stored in the data directory. */
  adminKey: string | undefined;
  /** Longest a poll may wait (the `wait` parameter's upper bound). */
  maxWaitMs: number;
  /** Events older than this are removed. */
  retentionMs: number;
  /** Largest serialized `data` of one event. */
  maxEventBytes: number;
  /** Largest request body (publish; the other routes take small documents, see http/body.ts). */
  maxBodyBytes: number;
  /** Most open client connections (held polls included); more are closed as they arrive. */
  maxConnections: number;
  /** A request's headers must arrive within this, counted from its first byte. */
  headersTimeoutMs: number;
  /** A whole request (headers and body) must arrive within this; a held poll, already received, is not cut. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  logLevel: string;
  /** auto: readable lines when stdout is a terminal, JSON lines otherwise. */
  logFormat: 'auto' | 'json' | 'pretty';
  /** Delays between delivery attempts of a stuck event; the last one repeats. */
  retryScheduleMs: number[];
  /** After this long failing on one event, a webhook is disabled. */
  retryMaxAgeMs: number;
  /** Lets webhooks target loopback and private addresses (tests, on-prem). */
  allowPrivateTargets: boolean;
  /** Most webhook requests in flight at once, over all consumers. */
  pushConcurrency: number;
  /** postgres://… selects the PostgreSQL engine (many nodes); unset: SQLite in dataDir. */
  databaseUrl: string | undefined;
  /** Connections per node to PostgreSQL (held polls hold none). */
  databasePoolSize: number;
  /** How long a node's claim on a push consumer lasts unrenewed: the takeover time when a node dies. */
  leaseTtlMs: number;
  /** SIGTERM: the longest a stop may take; connections still open at half of it are cut, and past it the process exits 1. */
  shutdownTimeoutMs: number;
  /** Largest poll answer, by the bytes of its events' data (one larger event still goes out alone). */
  maxPageBytes: number;
  /** Poll answers built and not yet handed to the OS, all clients together; past it pages shrink to one event. */
  pageBytesInFlight: number;
  /** Events the push bridge reads ahead, all push consumers together, by the bytes of their data. */
  pushReadAheadBytes: number;
  /** Where webhook failure alerts also go (signed with alertSecret); unset: only the tenant's log. */
  alertUrl: string | undefined;
  /** whsec_… secret signing the alerts sent to alertUrl. */
  alertSecret: string | undefined;
  /** Failed attempts within alertWindowMs that make a webhook "failing" (a webhook may override both). */
  alertFailures: number;
  alertWindowMs: number;
  /** After a failing alert, the same webhook's next one waits at least this long (a flapping endpoint stays quiet). */
  alertDebounceMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "500ms", "5s", "10m", "2h", "3d"; a bare number is seconds. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a duration (write e.g. 500ms, 5s, 10m, 2h, 3d)`);
  return Math.round(Number(m[1]) * UNITS[m[2] ?? 's']!);
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, kb: 1000, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };

/** "262144", "256KiB", "8MiB", "1MB". */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = SIZE_UNITS[(m?.[2] ?? '').toLowerCase()];
  if (!m || unit === undefined) throw new Error(`"${text}" is not a size (write e.g. 262144, 256KiB, 8MiB)`);
  return Math.round(Number(m[1]) * unit);
}

function parseSchedule(text: string): number[] {
  const delays = text.split(',').map((part) => parseDuration(part));
  if (delays.length === 0 || delays.some((d) => d <= 0)) throw new Error(`"${text}" must list positive durations`);
  return delays;
}

function parseBoolean(text: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  throw new Error(`"${text}" is not a boolean (1 or 0)`);
}

function parsePositiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`"${text}" is not a positive integer`);
  return n;
}

function parsePositiveDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms <= 0) throw new Error(`"${text}" must be longer than 0`);
  return ms;
}

function parsePort(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`"${text}" is not a port (0-65535)`);
  return n;
}

function parseDatabaseUrl(text: string): string {
  if (!/^postgres(ql)?:\/\//.test(text)) throw new Error('must be a postgres://… URL');
  return text;
}

function parseAlertUrl(text: string): string {
  const url = URL.canParse(text) ? new URL(text) : null;
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new Error('must be an absolute http:// or https:// URL');
  return url.href;
}

function parseAlertSecret(text: string): string {
  const problem = secretProblem(text);
  if (problem) throw new Error(problem);
  return text;
}

function parseLogFormat(text: string): Config['logFormat'] {
  if (text !== 'auto' && text !== 'json' && text !== 'pretty') throw new Error(`"${text}" is not one of auto, json, pretty`);
  return text;
}

function parseLevel(text: string): string {
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(text)) throw new Error(`"${text}" is not one of ${levels.join(', ')}`);
  return text;
}

interface Option<K extends keyof Config> {
  key: K;
  env: string;
  parse: (text: string) => Config[K];
  fallback: Config[K];
  help: string;
}

const option = <K extends keyof Config>(o: Option<K>) => o;

export const OPTIONS = [
  option({ key: 'dataDir', env: 'POLLGATE_DATA_DIR', parse: (s) => s, fallback: './data', help: 'where the database and the generated admin key live' }),
  option({ key: 'host', env: 'POLLGATE_HOST', parse: (s) => s, fallback: '127.0.0.1', help: 'address to listen on' }),
  option({ key: 'port', env: 'POLLGATE_PORT', parse: parsePort, fallback: 8080, help: 'port to listen on (0 picks a free one)' }),
  option({ key: 'adminKey', env: 'POLLGATE_ADMIN_KEY', parse: (s) => s, fallback: undefined, help: 'the admin key; unset: generated and stored 0600 in the data directory' }),
  option({ key: 'maxWaitMs', env: 'POLLGATE_MAX_WAIT', parse: parseDuration, fallback: 60_000, help: 'longest `wait` a poll may ask for (a bare number is seconds)' }),
  option({ key: 'retentionMs', env: 'POLLGATE_RETENTION', parse: parseDuration, fallback: 7 * 86_400_000, help: 'events older than this are removed' }),
  option({ key: 'maxEventBytes', env: 'POLLGATE_MAX_EVENT_BYTES', parse: parseSize, fallback: 256 * 1024, help: "largest serialized `data` of one event" }),
  option({ key: 'maxBodyBytes', env: 'POLLGATE_MAX_BODY_BYTES', parse: parseSize, fallback: 8 * 1024 * 1024, help: 'largest publish body (other routes: 64KiB, consumer and webhook settings 512KiB)' }),
  option({ key: 'maxConnections', env: 'POLLGATE_MAX_CONNECTIONS', parse: parsePositiveInt, fallback: 16_384, help: 'most open client connections, held polls included (lowered to fit the open-file limit)' }),
  option({ key: 'headersTimeoutMs', env: 'POLLGATE_HEADERS_TIMEOUT', parse: parsePositiveDuration, fallback: 10_000, help: "a request's headers must arrive within this" }),
  option({ key: 'requestTimeoutMs', env: 'POLLGATE_REQUEST_TIMEOUT', parse: parsePositiveDuration, fallback: 30_000, help: 'a whole request, body included, must arrive within this (held polls are not cut)' }),
  option({ key: 'keepAliveTimeoutMs', env: 'POLLGATE_KEEP_ALIVE_TIMEOUT', parse: parsePositiveDuration, fallback: 5_000, help: 'idle keep-alive connections are closed after this' }),
  option({ key: 'retryScheduleMs', env: 'POLLGATE_RETRY_SCHEDULE', parse: parseSchedule, fallback: [5e3, 30e3, 120e3, 600e3, 1800e3, 3600e3, 7200e3, 14400e3], help: 'webhook retry delays, the last repeating (±20 % jitter)' }),
  option({ key: 'retryMaxAgeMs', env: 'POLLGATE_RETRY_MAX_AGE', parse: parseDuration, fallback: 3 * 86_400_000, help: 'a webhook failing this long on one event is disabled' }),
  option({ key: 'allowPrivateTargets', env: 'POLLGATE_ALLOW_PRIVATE_TARGETS', parse: parseBoolean, fallback: false, help: 'allow webhooks to loopback/private addresses (1 or 0)' }),
  option({ key: 'pushConcurrency', env: 'POLLGATE_PUSH_CONCURRENCY', parse: parsePositiveInt, fallback: 256, help: 'most webhook requests in flight at once' }),
  option({ key: 'databaseUrl', env: 'POLLGATE_DATABASE_URL', parse: parseDatabaseUrl, fallback: undefined, help: 'postgres://… to run on PostgreSQL (many nodes); unset: SQLite in the data directory' }),
  option({ key: 'databasePoolSize', env: 'POLLGATE_DATABASE_POOL', parse: parsePositiveInt, fallback: 10, help: 'connections per node to PostgreSQL' }),
  option({ key: 'leaseTtlMs', env: 'POLLGATE_LEASE_TTL', parse: parseDuration, fallback: 15_000, help: 'push consumers of a node that died move to another node after this long' }),
  option({ key: 'shutdownTimeoutMs', env: 'POLLGATE_SHUTDOWN_TIMEOUT', parse: parseDuration, fallback: 10_000, help: 'longest a SIGTERM stop may take (open requests are cut at half of it); then exit 1' }),
  option({ key: 'maxPageBytes', env: 'POLLGATE_MAX_PAGE_BYTES', parse: parseSize, fallback: 4 * 1024 * 1024, help: 'largest poll answer by event data; more: true says the rest follows' }),
  option({ key: 'pageBytesInFlight', env: 'POLLGATE_PAGE_BYTES_IN_FLIGHT', parse: parseSize, fallback: 128 * 1024 * 1024, help: 'poll answers not yet sent, all clients; past it answers hold one event' }),
  option({ key: 'pushReadAheadBytes', env: 'POLLGATE_PUSH_READ_AHEAD_BYTES', parse: parseSize, fallback: 64 * 1024 * 1024, help: 'events the push bridge buffers, all push consumers together' }),
  option({ key: 'alertUrl', env: 'POLLGATE_ALERT_URL', parse: parseAlertUrl, fallback: undefined, help: 'also POST webhook failure alerts here (signed; needs POLLGATE_ALERT_SECRET)' }),
  option({ key: 'alertSecret', env: 'POLLGATE_ALERT_SECRET', parse: parseAlertSecret, fallback: undefined, help: 'whsec_… secret signing the alerts sent to POLLGATE_ALERT_URL' }),
  option({ key: 'alertFailures', env: 'POLLGATE_ALERT_FAILURES', parse: parsePositiveInt, fallback: 3, help: 'failed attempts within POLLGATE_ALERT_WINDOW that make a webhook failing' }),
  option({ key: 'alertWindowMs', env: 'POLLGATE_ALERT_WINDOW', parse: parsePositiveDuration, fallback: 86_400_000, help: 'the window of POLLGATE_ALERT_FAILURES' }),
  option({ key: 'alertDebounceMs', env: 'POLLGATE_ALERT_DEBOUNCE', parse: parseDuration, fallback: 3_600_000, help: "least time between two failing alerts of one webhook" }),
  option({ key: 'logLevel', env: 'POLLGATE_LOG_LEVEL', parse: parseLevel, fallback: 'info', help: 'fatal, error, warn, info, debug, trace or silent' }),
  option({ key: 'logFormat', env: 'POLLGATE_LOG_FORMAT', parse: parseLogFormat, fallback: 'auto', help: 'auto (readable at a terminal, else JSON lines), json or pretty' }),
] as const;

const flagOf = (env: string) => env.slice('POLLGATE_'.length).toLowerCase().replaceAll('_', '-');

export function loadConfig(env: Record<string, string | undefined>, argv: string[] = []): Config {
  const { values } = parseArgs({
    args: argv,
    options: Object.fromEntries(OPTIONS.map((o) => [flagOf(o.env), { type: 'string' as const }])),
    strict: true,
    allowPositionals: false,
  });
  const config: Record<string, unknown> = {};
  for (const o of OPTIONS) {
    const flag = flagOf(o.env);
    const text = (values[flag] as string | undefined) ?? env[o.env];
    if (text === undefined || text === '') {
      config[o.key] = o.fallback;
      continue;
    }
    try {
      config[o.key] = o.parse(text);
    } catch (error) {
      throw new ConfigError(`${o.env} (--${flag}): ${(error as Error).message}`);
    }
  }
  const loaded = config as unknown as Config;
  if (loaded.headersTimeoutMs > loaded.requestTimeoutMs) {
    // Node refuses a headers timeout longer than the request timeout; say so in our terms.
    throw new ConfigError(
      `POLLGATE_HEADERS_TIMEOUT (${loaded.headersTimeoutMs} ms) must not exceed POLLGATE_REQUEST_TIMEOUT (${loaded.requestTimeoutMs} ms)`,
    );
  }
  if (loaded.alertUrl !== undefined && loaded.alertSecret === undefined) {
    throw new ConfigError('POLLGATE_ALERT_URL needs POLLGATE_ALERT_SECRET (whsec_… followed by base64 of 24 to 64 bytes): alerts are signed like any delivery');
  }
  return loaded;
}

export function configHelp(): string {
  return OPTIONS.map((o) => `  --${flagOf(o.env).padEnd(21)} ${o.env.padEnd(30)} ${o.help}`).join('\n');
}

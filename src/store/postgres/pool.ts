/**
 * Connections to PostgreSQL, and what a failure of them means to a caller.
 *
 * 1. One small pool per node (held polls hold no connection), with a connect timeout, a
 *    statement timeout and an idle-in-transaction timeout, so a lost database or a stuck
 *    session turns into an error within seconds instead of a pile-up; application_name names
 *    the node in pg_stat_activity.
 * 2. bigint (int8) columns arrive as JS numbers through this pool's own type parsers: the
 *    global pg parsers stay untouched for whatever else shares the process.
 * 3. A connection that dies never crashes the process: every client and the pool carry an
 *    'error' listener; the broken client is discarded and the next query opens a new one.
 * 4. Errors that mean "the database cannot be reached or is not answering in time" become
 *    ApiError unavailable (503 with Retry-After at the edge); others pass through unchanged.
 */
import pg from 'pg';
import type { CustomTypesConfig, Pool, PoolClient } from 'pg';
import type { Logger } from 'pino';
import { ApiError } from '../../errors.ts';
import { LeaseLost } from '../store.ts';

const INT8_OID = 20;

/** int8 as a number: positions, times and counts stay far below 2^53. */
const parseInt8 = (value: string): number => Number(value);

export const pgTypes: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? parseInt8
      : pg.types.getTypeParser(oid, format as 'text')) as CustomTypesConfig['getTypeParser'],
};

export interface PoolSettings {
  url: string;
  nodeId: string;
  max: number;
  logger: Logger;
  connectionTimeoutMillis?: number;
  statementTimeoutMs?: number;
  idleInTransactionMs?: number;
}

/** Settings shared by the pool and the dedicated LISTEN client. */
export function clientConfig(s: { url: string; nodeId: string; connectionTimeoutMillis?: number | undefined }): pg.ClientConfig {
  return {
    connectionString: s.url,
    application_name: `pollgate:${s.nodeId}`.slice(0, 63),
    connectionTimeoutMillis: s.connectionTimeoutMillis ?? 5_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    types: pgTypes,
  };
}

export function createPool(s: PoolSettings): Pool {
  const pool = new pg.Pool({
    ...clientConfig(s),
    max: s.max,
    idleTimeoutMillis: 30_000,
    statement_timeout: s.statementTimeoutMs ?? 30_000,
    idle_in_transaction_session_timeout: s.idleInTransactionMs ?? 15_000,
  });
  // An idle client whose server went away: the pool discards it and emits here.
  pool.on('error', (error) => s.logger.warn({ err: error }, 'postgres: an idle connection failed'));
  // A checked-out client between two queries has no listener of the pool's; without this one a
  // server-side termination in that window would be an unhandled 'error' event (a crash). The
  // pool still discards the client on release (it is no longer queryable).
  pool.on('connect', (client: PoolClient) => {
    client.on('error', (error) => s.logger.debug({ err: error }, 'postgres: a connection failed'));
  });
  return pool;
}

/** SQLSTATE classes and codes that mean "not now, try again", never "your request is wrong". */
const UNAVAILABLE_STATES = new Set([
  '55P03', // lock_not_available (lock_timeout)
  '57014', // query_canceled (statement_timeout)
  '57P01', // admin_shutdown (also pg_terminate_backend)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, recovery)
  '57P04', // database_dropped
  '3D000', // invalid_catalog_name: the database is not there (yet)
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '25P03', // idle_in_transaction_session_timeout
  '25006', // read_only_sql_transaction (a standby after failover)
]);
const UNAVAILABLE_CLASSES = ['08', '53', '58']; // connection exception, insufficient resources, system error

const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

const UNAVAILABLE_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection timeout/i,
  /not queryable/i,
  /terminating connection/i,
  /the database system is (starting up|shutting down|in recovery)/i,
  /client was closed/i,
];

/** True for errors that mean the database cannot serve right now (connection, shutdown, timeouts). */
export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const e = error as Error & { code?: unknown; errors?: unknown };
  if (typeof e.code === 'string') {
    if (UNAVAILABLE_STATES.has(e.code) || UNAVAILABLE_NODE_CODES.has(e.code)) return true;
    if (e.code.length === 5 && UNAVAILABLE_CLASSES.includes(e.code.slice(0, 2))) return true;
  }
  // Connecting to "localhost" tries ::1 and 127.0.0.1 and fails with an AggregateError of both.
  if (Array.isArray(e.errors) && e.errors.some(isUnavailable)) return true;
  return UNAVAILABLE_MESSAGES.some((re) => re.test(e.message));
}

export function unavailable(cause?: unknown): ApiError {
  const error = new ApiError('unavailable', 'the database is unavailable; retry shortly');
  if (cause !== undefined) error.cause = cause;
  return error;
}

export function shuttingDown(): ApiError {
  return new ApiError('shutting_down', 'the server is shutting down');
}

/** What a store method rejects with: our own errors as they are, lost connections as unavailable. */
export function translate(error: unknown): unknown {
  if (error instanceof ApiError || error instanceof LeaseLost) return error;
  if (isUnavailable(error)) return unavailable(error);
  if (isUnstorableText(error)) {
    return new ApiError('invalid_request', 'a text value holds a character PostgreSQL cannot store (NUL, U+0000); nothing was changed');
  }
  return error;
}

/**
 * PostgreSQL text cannot hold NUL: a string with one (an id in a path, a secret…) fails the
 * statement before it changes anything. The request is at fault, never the gateway.
 */
function isUnstorableText(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '22021' || code === '22P05';
}

/** A PostgreSQL unique violation on the named constraint (or index). */
export function isUniqueViolation(error: unknown, constraint: string): boolean {
  const e = error as { code?: unknown; constraint?: unknown } | null;
  return !!e && e.code === '23505' && e.constraint === constraint;
}

/**
 * What a call can fail with. An answer from the server (any non-2xx) is a PollgateError with
 * the status, the error code and message from the body, and the body's other fields in
 * `details`; a 410 is its subclass CursorExpiredError with `earliest`, a 413
 * PayloadTooLargeError with `limit`. No answer at all
 * (refused, reset, DNS, our own time budget ran out) is a NetworkError. A caller's own
 * AbortSignal rejects with the signal's reason, as fetch does.
 */
import type { ErrorBody } from './types.ts';

export class PollgateError extends Error {
  override name = 'PollgateError';
  /** The HTTP status. */
  readonly status: number;
  /** The body's error.code (snake_case), or `http_<status>` when the body was not ours. */
  readonly code: string;
  /** The body's other error fields (e.g. `field`, `limit`, `earliest`). */
  readonly details: Readonly<Record<string, unknown>>;
  /** A Retry-After header, in ms, when the answer carried one. */
  readonly retryAfterMs: number | null;

  constructor(
    status: number,
    code: string,
    message: string,
    details: Record<string, unknown> = {},
    retryAfterMs: number | null = null,
  ) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfterMs = retryAfterMs;
  }

  /** The field a 400 names, when it names one. */
  get field(): string | undefined {
    return typeof this.details.field === 'string' ? this.details.field : undefined;
  }

  toJSON(): ErrorBody & { status: number } {
    return { status: this.status, error: { ...this.details, code: this.code, message: this.message } };
  }
}

/**
 * 410: retention removed events after the read position. Nothing was skipped; seek the
 * consumer (to `earliest`, or elsewhere) and poll again.
 */
export class CursorExpiredError extends PollgateError {
  override name = 'CursorExpiredError';
  /** Reading after this cursor yields the oldest retained event of the tenant. */
  readonly earliest: string;

  constructor(message: string, details: Record<string, unknown>, earliest: string) {
    super(410, 'cursor_expired', message, details, null);
    this.earliest = earliest;
  }
}

/**
 * 413: the request (a publish batch, usually) is larger than the gateway accepts. Final:
 * sending it again gets the same answer; split the batch or shrink the events. `limit` is the
 * bound that was exceeded, in bytes (the whole body, or one event's `data` when `field` says so).
 */
export class PayloadTooLargeError extends PollgateError {
  override name = 'PayloadTooLargeError';
  readonly limit: number | undefined;

  constructor(message: string, details: Record<string, unknown>) {
    super(413, 'payload_too_large', message, details, null);
    this.limit = typeof details.limit === 'number' ? details.limit : undefined;
  }
}

export type NetworkErrorKind = 'timeout' | 'refused' | 'reset' | 'dns' | 'network';

/** No answer from the server: retryable by nature. `cause` holds the underlying error. */
export class NetworkError extends Error {
  override name = 'NetworkError';
  readonly kind: NetworkErrorKind;

  constructor(kind: NetworkErrorKind, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.kind = kind;
  }
}

/** Builds the error for a non-2xx answer from its status, body text and headers. */
export function errorFromResponse(status: number, text: string, headers: Headers): PollgateError {
  const retryAfterMs = parseRetryAfter(headers.get('retry-after'));
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  const error = (parsed as Partial<ErrorBody> | undefined)?.error;
  if (!error || typeof error !== 'object' || typeof error.code !== 'string') {
    // Not one of ours (a proxy's page, an empty body): keep a short excerpt as the message.
    const excerpt = text.replace(/\s+/g, ' ').trim().slice(0, 200);
    return new PollgateError(status, `http_${status}`, excerpt || `HTTP ${status}`, {}, retryAfterMs);
  }
  const { code, message, ...details } = error;
  const text2 = typeof message === 'string' ? message : `HTTP ${status} ${code}`;
  if (status === 410 && code === 'cursor_expired' && typeof details.earliest === 'string') {
    return new CursorExpiredError(text2, details, details.earliest);
  }
  if (status === 413 && code === 'payload_too_large') return new PayloadTooLargeError(text2, details);
  return new PollgateError(status, code, text2, details, retryAfterMs);
}

/** Retry-After in seconds or as an HTTP date, in ms; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** Names the failure of a fetch that got no answer. */
export function networkError(error: unknown, timedOut: boolean, timeoutMs: number): NetworkError {
  if (timedOut) return new NetworkError('timeout', `no answer within ${timeoutMs} ms`, error);
  const e = error as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  const code = e?.cause?.code ?? e?.code ?? '';
  const detail = e?.cause?.message ?? e?.message ?? String(error);
  let kind: NetworkErrorKind = 'network';
  if (code === 'ECONNREFUSED') kind = 'refused';
  else if (['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ECONNABORTED', 'UND_ERR_CLOSED'].includes(code)) kind = 'reset';
  else if (['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'EAI_NONAME'].includes(code)) kind = 'dns';
  else if (['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'].includes(code)) kind = 'timeout';
  return new NetworkError(kind, `request failed (${code || kind}): ${detail}`, error);
}

/**
 * Worth trying again with backoff: no answer, 5xx (including 503 shutting_down during a
 * deploy), 429, 408. Every other answer is final (a 413 above all: the same body gets the same
 * answer); the caller must change the request.
 */
export function isRetryable(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  if (error instanceof PollgateError) return error.status >= 500 || error.status === 429 || error.status === 408;
  return false;
}

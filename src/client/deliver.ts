/**
 * One delivery attempt of `forward`: the envelope POSTed to a local URL, signed like the push
 * bridge signs (signing.ts), classified into an outcome. The platform's fetch only.
 *
 * - The attempt ends within its timeout whatever the receiver does (headers and body under
 *   one deadline), and at once when `signal` aborts (a second SIGINT/SIGTERM).
 * - Redirects are never followed: a 3xx is a failed attempt and its Location is not contacted.
 * - The answer's body is read (at most 64 KiB, then the connection is dropped) and thrown away.
 */
import { parseRetryAfter } from './errors.ts';
import { signatureHeaders } from './signing.ts';

export interface DeliveryTarget {
  url: string;
  method: string;
  headers: Record<string, string>;
  secret: string;
  timeoutMs: number;
}

export type DeliveryError = 'timeout' | 'refused' | 'reset' | 'dns' | 'tls' | 'http_status' | 'network';

export interface DeliveryOutcome {
  ok: boolean;
  /** The HTTP status, or null when no answer came. */
  status: number | null;
  error: DeliveryError | null;
  /** A short human detail (never secrets). */
  detail: string | null;
  durationMs: number;
  /** From a Retry-After header, in ms. */
  retryAfterMs: number | null;
}

const MAX_RESPONSE_BYTES = 64 * 1024;

export async function deliver(
  target: DeliveryTarget,
  eventId: string,
  body: string,
  userAgent: string,
  signal?: AbortSignal,
): Promise<DeliveryOutcome> {
  const started = performance.now();
  const done = (o: Pick<DeliveryOutcome, 'ok' | 'error' | 'detail'> & Partial<DeliveryOutcome>): DeliveryOutcome => ({
    status: null,
    retryAfterMs: null,
    ...o,
    durationMs: Math.round(performance.now() - started),
  });
  if (signal?.aborted) return done({ ok: false, error: 'network', detail: 'stopping: not attempted' });

  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, target.timeoutMs);
  const onAbort = () => controller.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const res = await fetch(target.url, {
      method: target.method,
      headers: {
        ...target.headers,
        'content-type': 'application/json',
        'user-agent': userAgent,
        ...signatureHeaders(target.secret, eventId, Math.floor(Date.now() / 1000), body),
      },
      body,
      redirect: 'manual',
      signal: controller.signal,
    });
    await drain(res);
    if (res.status >= 200 && res.status < 300) return done({ ok: true, status: res.status, error: null, detail: null });
    return done({
      ok: false,
      status: res.status,
      error: 'http_status',
      detail: `HTTP ${res.status}`,
      retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
    });
  } catch (error) {
    if (timedOut) return done({ ok: false, error: 'timeout', detail: `no complete answer within ${target.timeoutMs} ms` });
    if (signal?.aborted) return done({ ok: false, error: 'network', detail: 'cut short: stopping' });
    return done({ ok: false, error: classify(error), detail: describe(error) });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Reads and drops the answer's body, up to MAX_RESPONSE_BYTES (then cancels it). */
async function drain(res: Response): Promise<void> {
  if (!res.body) return;
  const reader = res.body.getReader();
  let read = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    read += value.byteLength;
    if (read > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      return;
    }
  }
}

function codeOf(error: unknown): string {
  // fetch rejects with TypeError('fetch failed') whose cause carries the system error's code.
  const e = error as { code?: unknown; cause?: { code?: unknown } };
  const code = typeof e?.code === 'string' ? e.code : e?.cause?.code;
  return typeof code === 'string' ? code : '';
}

export function classify(error: unknown): DeliveryError {
  const code = codeOf(error);
  if (code === 'ECONNREFUSED') return 'refused';
  if (['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ECONNABORTED'].includes(code)) return 'reset';
  if (['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'].includes(code)) return 'timeout';
  if (['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'EAI_NONAME'].includes(code)) return 'dns';
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL')) return 'tls';
  return 'network';
}

function describe(error: unknown): string {
  const e = error as { message?: string; cause?: { message?: string } };
  const message = e?.cause?.message ?? e?.message ?? String(error);
  return message.slice(0, 200);
}

/**
 * One delivery attempt: a signed request to the webhook, classified into an outcome.
 * Uses one keep-alive undici Agent for all targets; redirects are never followed (a 3xx is a
 * failed attempt and its Location is not contacted); the whole attempt is bounded by the
 * webhook's timeout; unless private targets are allowed, sockets only connect to addresses
 * the SSRF guard approved (targets.ts).
 */
import { isIP } from 'node:net';
import { Agent, request } from 'undici';
import { hostOf, isPrivateAddress, publicLookup, TargetNotAllowed, type Resolver } from './targets.ts';
import { signatureHeaders } from './signing.ts';

export interface Target {
  url: string;
  method: string;
  headers: Record<string, string>;
  secret: string;
  timeoutMs: number;
}

export type ErrorClass =
  | 'timeout'
  | 'refused'
  | 'reset'
  | 'dns'
  | 'tls'
  | 'http_status'
  | 'target_not_allowed'
  | 'network';

export interface AttemptOutcome {
  ok: boolean;
  status: number | null;
  error: ErrorClass | null;
  /** A short human detail (never secrets). */
  detail: string | null;
  durationMs: number;
  /** From a Retry-After header, in ms. */
  retryAfterMs: number | null;
}

export interface Deliverer {
  /** Sends body (the envelope) for event id; aborted by signal (shutdown) or the timeout. */
  deliver(target: Target, eventId: string, body: string, signal?: AbortSignal): Promise<AttemptOutcome>;
  close(): Promise<void>;
}

/** Bytes of a response body read (and dropped) before the connection is reused. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export function createDeliverer(opts: { allowPrivateTargets: boolean; userAgent: string; resolve?: Resolver }): Deliverer {
  const agent = new Agent({
    keepAliveTimeout: 30_000,
    connections: 16, // per origin: consumers sharing a receiver each get a socket
    connect: opts.allowPrivateTargets ? {} : { lookup: publicLookup(opts.resolve) as never },
  });

  async function deliver(target: Target, eventId: string, body: string, signal?: AbortSignal): Promise<AttemptOutcome> {
    const started = performance.now();
    const done = (o: Omit<AttemptOutcome, 'durationMs'>): AttemptOutcome => ({
      ...o,
      durationMs: Math.round(performance.now() - started),
    });
    const url = new URL(target.url);
    const host = hostOf(url);
    // Names are checked at connect time by lookupPublic; literal addresses never reach a lookup.
    if (!opts.allowPrivateTargets && isIP(host) && isPrivateAddress(host)) {
      return done({ ok: false, status: null, error: 'target_not_allowed', detail: `${host} is not allowed`, retryAfterMs: null });
    }
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), target.timeoutMs);
    const onAbort = () => timeout.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await request(url, {
        method: target.method as 'POST',
        headers: {
          ...target.headers,
          'content-type': 'application/json',
          'user-agent': opts.userAgent,
          ...signatureHeaders(target.secret, eventId, Math.floor(Date.now() / 1000), body),
        },
        body,
        dispatcher: agent,
        signal: timeout.signal,
      });
      await drain(res.body);
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      return done({
        ok,
        status: res.statusCode,
        error: ok ? null : 'http_status',
        detail: ok ? null : `HTTP ${res.statusCode}`,
        retryAfterMs: ok ? null : parseRetryAfter(res.headers['retry-after']),
      });
    } catch (error) {
      const kind = timeout.signal.aborted && !signal?.aborted ? 'timeout' : classify(error);
      return done({ ok: false, status: null, error: kind, detail: describe(error, kind, target.timeoutMs), retryAfterMs: null });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  return { deliver, close: () => agent.close() };
}

async function drain(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<void> {
  let read = 0;
  for await (const chunk of body) {
    read += chunk.length;
    if (read > MAX_RESPONSE_BYTES) {
      body.destroy();
      return;
    }
  }
}

function codeOf(error: unknown): string {
  // Codes are strings for system and undici errors; a DOMException's is a number.
  const e = error as { code?: unknown; cause?: { code?: unknown } };
  const code = typeof e?.code === 'string' ? e.code : e?.cause?.code;
  return typeof code === 'string' ? code : '';
}

export function classify(error: unknown): ErrorClass {
  if (error instanceof TargetNotAllowed || (error as { cause?: unknown })?.cause instanceof TargetNotAllowed) {
    return 'target_not_allowed';
  }
  const code = codeOf(error);
  if (code === 'ECONNREFUSED') return 'refused';
  if (['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ECONNABORTED'].includes(code)) return 'reset';
  if (['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'].includes(code)) return 'timeout';
  if (['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA', 'EAI_NONAME'].includes(code)) return 'dns';
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL') || code === 'DEPTH_ZERO_SELF_SIGNED_CERT') return 'tls';
  return 'network';
}

function describe(error: unknown, kind: ErrorClass, timeoutMs: number): string {
  if (kind === 'timeout') return `no complete answer within ${timeoutMs} ms`;
  const message = (error as Error)?.message ?? String(error);
  return message.slice(0, 200);
}

/** Retry-After in seconds or as an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | null {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return null;
  if (/^\s*\d+\s*$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * One request to pollgate: Bearer key, JSON in and out, a time budget per request, and errors
 * turned into PollgateError / NetworkError (errors.ts). No retries here: the iterators decide
 * what is worth retrying, single calls leave it to the caller.
 *
 * The time budget covers the whole exchange (headers and body). A caller's signal aborts too,
 * and then the call rejects with that signal's reason, so callers can tell "I stopped" from
 * "the network failed".
 */
import { errorFromResponse, networkError, PollgateError } from './errors.ts';

export type FetchLike = (input: string | URL, init?: RequestInit) => Promise<Response>;

/** console-compatible; pass `console`, a pino logger's bound methods, or nothing. */
export interface ClientLogger {
  debug?(message: string, fields?: Record<string, unknown>): void;
  warn?(message: string, fields?: Record<string, unknown>): void;
}

export interface TransportOptions {
  /** The gateway's base URL, e.g. http://127.0.0.1:8080 (a path prefix is kept). */
  url: string;
  key: string;
  fetch?: FetchLike;
  /** Time budget of a request that does not hold (default 30 s). */
  timeoutMs?: number;
  /** Extra headers on every request (e.g. a proxy's). */
  headers?: Record<string, string>;
}

export interface RequestSpec {
  method?: string;
  path: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  signal?: AbortSignal | undefined;
  timeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

export interface Transport {
  request<T>(spec: RequestSpec): Promise<T>;
  readonly baseUrl: string;
}

export function createTransport(opts: TransportOptions): Transport {
  if (!opts.url) throw new TypeError('pollgate client: `url` is required');
  if (!opts.key) throw new TypeError('pollgate client: `key` is required');
  const base = new URL(opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new TypeError(`pollgate client: url must be http:// or https://, not ${base.protocol}`);
  }
  const doFetch: FetchLike = opts.fetch ?? ((input, init) => fetch(input, init));
  const defaultTimeout = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;

  async function request<T>(spec: RequestSpec): Promise<T> {
    const url = new URL(spec.path.replace(/^\//, ''), base);
    for (const [k, v] of Object.entries(spec.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = {
      ...opts.headers,
      accept: 'application/json',
      authorization: `Bearer ${opts.key}`,
    };
    let body: string | undefined;
    if (spec.body !== undefined) {
      body = JSON.stringify(spec.body);
      headers['content-type'] = 'application/json';
    }
    const timeoutMs = spec.timeoutMs ?? defaultTimeout;
    // One controller for both the budget and the caller's signal, unhooked in `finally`, so a
    // long-lived caller signal (an iterator's) does not collect a listener per request.
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new DOMException('request timed out', 'TimeoutError'));
    }, timeoutMs);
    const onAbort = () => controller.abort(spec.signal!.reason);
    if (spec.signal?.aborted) onAbort();
    else spec.signal?.addEventListener('abort', onAbort, { once: true });
    const signal = controller.signal;
    try {
      let res: Response;
      let text: string;
      try {
        res = await doFetch(url, {
          method: spec.method ?? (body === undefined ? 'GET' : 'POST'),
          headers,
          ...(body !== undefined ? { body } : {}),
          signal,
          redirect: 'manual',
        });
        text = await res.text();
      } catch (error) {
        if (spec.signal?.aborted) throw spec.signal.reason;
        throw networkError(error, timedOut, timeoutMs);
      }
      if (res.status < 200 || res.status >= 300) throw errorFromResponse(res.status, text, res.headers);
      try {
        return (text ? JSON.parse(text) : undefined) as T;
      } catch {
        // A 2xx that is not JSON did not come from pollgate (a captive portal, a misrouted proxy).
        const excerpt = text.replace(/\s+/g, ' ').trim().slice(0, 200);
        throw new PollgateError(res.status, 'invalid_response', `the answer is not JSON: ${excerpt}`);
      }
    } finally {
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', onAbort);
    }
  }

  return { request, baseUrl: base.href };
}

/** Resolves after ms, or early (without error) when signal aborts. Answers false if aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

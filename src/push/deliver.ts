/**
 * One delivery attempt: a signed request to the webhook, classified into an outcome.
 *
 * 1. Every attempt ends within the webhook's timeout, whatever the receiver, the network or
 *    the HTTP client does: the exchange (connect, request, answer, the answer's body) races a
 *    hard deadline, and a shutdown signal ends it at once. The loser's connection is destroyed,
 *    so nothing of it lingers.
 * 2. Each attempt has a connection of its own (connections.ts): a refused, failed or hung
 *    attempt cannot use up or block what another webhook on the same receiver needs.
 * 3. Headers the client could not send (a webhook stored before they were checked at
 *    configuration) make a failed attempt with error `invalid_header`, never an exception.
 * 4. Redirects are never followed (a 3xx is a failed attempt and its Location is not
 *    contacted); unless private targets are allowed, sockets only connect to addresses the
 *    SSRF guard approved (targets.ts).
 */
import { isIP } from 'node:net';
import { request } from 'undici';
import { createConnections } from './connections.ts';
import { sendProblem } from './headers.ts';
import { hostOf, isPrivateAddress, publicLookup, TargetNotAllowed, type Resolver } from './targets.ts';
import type { OutgoingRequest } from './shape.ts';

/** A rendered request (push/shape.ts), signed, and how long it may take. */
export interface Attempt extends OutgoingRequest {
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
  | 'invalid_header'
  | 'render'
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
  /** The receiver's answer: its headers and the first KiB of its body (text), when there was one. */
  response: { headers: Record<string, string>; body: string; truncated: boolean } | null;
}

export interface Deliverer {
  /** Sends the request; ends by its timeout, or at once when signal aborts (shutdown). */
  deliver(attempt: Attempt, signal?: AbortSignal): Promise<AttemptOutcome>;
  /** Connections in use by attempts, and kept idle. */
  connections(): { busy: number; idle: number };
  close(): Promise<void>;
}

/** Bytes of a response body read (and dropped) before the connection is reused. */
const MAX_RESPONSE_BYTES = 64 * 1024;
/** Bytes of a response body kept for the attempt log and the test call. */
export const KEPT_RESPONSE_BYTES = 1024;

type Answer = { status: number; headers: Record<string, string>; body: string; truncated: boolean; complete: boolean };
type Race =
  | ({ kind: 'answer' } & Answer)
  | { kind: 'error'; error: unknown }
  | { kind: 'timeout' }
  | { kind: 'stopped' };

export function createDeliverer(opts: { allowPrivateTargets: boolean; userAgent: string; resolve?: Resolver }): Deliverer {
  const connections = createConnections(opts.allowPrivateTargets ? {} : { connect: { lookup: publicLookup(opts.resolve) as never } });

  async function deliver(target: Attempt, signal?: AbortSignal): Promise<AttemptOutcome> {
    const started = performance.now();
    const done = (o: Omit<AttemptOutcome, 'durationMs' | 'status' | 'retryAfterMs' | 'response'> & Partial<AttemptOutcome>): AttemptOutcome => ({
      status: null,
      retryAfterMs: null,
      response: null,
      ...o,
      durationMs: Math.round(performance.now() - started),
    });
    const fail = (error: ErrorClass, detail: string) => done({ ok: false, error, detail });

    const unsendable = sendProblem(target.headers);
    if (unsendable) {
      return fail('invalid_header', `header ${JSON.stringify(unsendable.name)}: ${unsendable.problem}; change the webhook's headers`);
    }
    let url: URL;
    try {
      url = new URL(target.url);
    } catch {
      return fail('network', 'the webhook URL does not parse');
    }
    const host = hostOf(url);
    // Names are checked at connect time by lookupPublic; literal addresses never reach a lookup.
    if (!opts.allowPrivateTargets && isIP(host) && isPrivateAddress(host)) {
      return fail('target_not_allowed', `${host} is not allowed`);
    }
    if (signal?.aborted) return fail('network', 'stopping: not attempted');

    let client;
    try {
      client = connections.take(url.origin);
    } catch (error) {
      return fail('network', (error as Error).message);
    }
    const exchange: Promise<Race> = (async () => {
      const res = await request(url, {
        method: target.method,
        headers: { ...target.headers, 'user-agent': opts.userAgent },
        body: target.body,
        dispatcher: client,
      });
      const { kept, truncated, complete } = await drain(res.body);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(res.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      return { kind: 'answer' as const, status: res.statusCode, headers, body: responseText(kept), truncated, complete };
    })().catch((error: unknown) => ({ kind: 'error' as const, error }));

    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const cut = new Promise<Race>((resolve) => {
      timer = setTimeout(() => resolve({ kind: 'timeout' }), target.timeoutMs);
      if (signal) {
        onAbort = () => resolve({ kind: 'stopped' });
        signal.addEventListener('abort', onAbort, { once: true });
      }
    });
    try {
      const result = await Promise.race([exchange, cut]);
      if (result.kind === 'answer') {
        if (result.complete) connections.release(client);
        else connections.discard(client);
        const ok = result.status >= 200 && result.status < 300;
        const response = { headers: result.headers, body: result.body, truncated: result.truncated };
        if (ok) return done({ ok, status: result.status, error: null, detail: null, response });
        return done({
          ok,
          status: result.status,
          error: 'http_status',
          detail: `HTTP ${result.status}`,
          retryAfterMs: parseRetryAfter(result.headers['retry-after']),
          response,
        });
      }
      // Whatever the exchange still holds (a socket, a queued request) goes with its connection.
      connections.discard(client);
      if (result.kind === 'timeout') return fail('timeout', `no complete answer within ${target.timeoutMs} ms`);
      if (result.kind === 'stopped') return fail('network', 'cut short: stopping');
      const kind = classify(result.error);
      return fail(kind, describe(result.error));
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  return { deliver, connections: () => connections.stats(), close: () => connections.close() };
}

/**
 * Reads the answer's body, keeping its first KiB; complete is false when it was too long to
 * read to the end (the connection is then not reused).
 */
async function drain(body: AsyncIterable<Buffer> & { destroy(): void }): Promise<{ kept: Buffer; truncated: boolean; complete: boolean }> {
  let read = 0;
  const kept: Buffer[] = [];
  for await (const chunk of body) {
    if (read < KEPT_RESPONSE_BYTES) kept.push(chunk.subarray(0, KEPT_RESPONSE_BYTES - read));
    read += chunk.length;
    if (read > MAX_RESPONSE_BYTES) {
      body.destroy();
      return { kept: Buffer.concat(kept), truncated: true, complete: false };
    }
  }
  return { kept: Buffer.concat(kept), truncated: read > KEPT_RESPONSE_BYTES, complete: true };
}

/** Text of kept bytes: a character cut at the end is dropped, NUL (which PostgreSQL text refuses) becomes U+FFFD. */
function responseText(bytes: Buffer): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(bytes, { stream: true }).replace(/\0/g, '\uFFFD');
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

function describe(error: unknown): string {
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

/**
 * `forward --to URL`: the agent a firewalled customer runs inside their network. It long-polls
 * pollgate with the consumer key (outbound only) and delivers each event to a local URL exactly
 * like the push bridge would, so a handler written for pollgate's webhooks works unchanged
 * behind a firewall. The same code runs as `pollgate forward` and `pollgate-client forward`.
 *
 * 1. Each event is POSTed as the envelope JSON, signed with Standard Webhooks headers
 *    (webhook-id = the event id, stable across retries), by ../deliver.ts: redirects are never
 *    followed, a 3xx is a failure.
 * 2. Strictly in log order, one event at a time. A failure (non-2xx, timeout, refused) is
 *    retried with exponential backoff and full jitter (500 ms → 30 s, Retry-After honoured),
 *    for ever: an event is never skipped. The log line says so.
 * 3. The cursor moves only past delivered events: a page is acked on the next poll after
 *    every event of it got a 2xx; on stop, what was delivered is committed.
 * 4. SIGINT/SIGTERM: no new attempt starts, an attempt in flight may finish (bounded by
 *    --timeout; a second signal cuts it), then exit 0. An undelivered event is never acked.
 * 5. The secret: --secret, else $POLLGATE_FORWARD_SECRET, else one is generated and printed to
 *    stderr once. Keep it stable by passing it: a generated one changes on every start.
 */
import { backoffDelay } from '../backoff.ts';
import { deliver, type DeliveryTarget } from '../deliver.ts';
import { sleep } from '../http.ts';
import { createClient } from '../index.ts';
import { generateSecret, secretProblem } from '../signing.ts';
import { CLIENT_VERSION } from '../version.ts';
import { parseArgs } from 'node:util';
import {
  asUsage,
  CONNECTION_HELP,
  CONNECTION_OPTIONS,
  connection,
  logLine,
  parseDuration,
  parseInteger,
  parseSeconds,
  stopSignals,
  UsageError,
  write,
  type CommandContext,
  type Env,
} from './args.ts';

export const FORWARD_SUMMARY = 'deliver events to a local URL as signed webhooks, acking after each 2xx (consumer key)';

const RETRY = { initialMs: 500, maxMs: 30_000 } as const;
const MAX_TIMEOUT_MS = 300_000;
/** Headers the forwarder sets itself (as the bridge does). */
const RESERVED = new Set([
  'webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'content-length',
  'host', 'connection', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', 'user-agent',
]);

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  to: { type: 'string' },
  secret: { type: 'string' },
  header: { type: 'string', multiple: true },
  timeout: { type: 'string', default: '10s' },
  wait: { type: 'string', default: '25' },
  limit: { type: 'string' },
} as const;

export function forwardHelp(name: string): string {
  return (
    `Usage: ${name} [options]\n\n${FORWARD_SUMMARY}\n\nOptions:\n` +
    '  --to <url>          where to POST each event, e.g. http://localhost:3000/hook (required)\n' +
    '  --secret <whsec>    Standard Webhooks secret "whsec_…" (default: $POLLGATE_FORWARD_SECRET, else\n' +
    '                      generated and printed once)\n' +
    '  --header <header>   extra request header "Name: value" (repeatable)\n' +
    '  --timeout <time>    time budget of one delivery attempt (default: "10s")\n' +
    '  --wait <seconds>    how long each poll holds, lowered to the server\'s maximum (default: "25")\n' +
    '  --limit <n>         most events per poll (1-1000)\n' +
    CONNECTION_HELP
  );
}

export async function runForward(argv: string[], ctx: CommandContext): Promise<void> {
  const opts = asUsage(() => parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values);
  if (opts.help) {
    await write(process.stdout, forwardHelp(ctx.name));
    return;
  }
  if (opts.to === undefined) throw new UsageError("required option '--to <url>' not specified");
  const conn = connection(opts, ctx.env);
  const target = targetOf(opts.to, opts, ctx.env);
  const wait = parseSeconds(opts.wait, '--wait');
  const limit = opts.limit === undefined ? undefined : parseInteger(opts.limit, '--limit', 1, 1000);

  const client = createClient(conn);
  const userAgent = `pollgate-forward/${CLIENT_VERSION}`;
  const signals = stopSignals();
  /** The last event that got a 2xx: committed on the way out. */
  let delivered: string | undefined;
  logLine(`forward: delivering to ${target.url}`);

  try {
    const events = client.events({
      wait,
      signal: signals.stop,
      ...(limit !== undefined ? { limit } : {}),
      onError: (error, { delayMs }) => logLine(`forward: poll failed (${error.message}); retrying in ${delayMs} ms`),
    });
    outer: for await (const event of events) {
      // The envelope as received: the server writes it with JSON.stringify semantics and a fixed key
      // order, so this is byte for byte what the push bridge would send.
      const body = JSON.stringify(event);
      for (let attempt = 1; ; attempt++) {
        const o = await deliver(target, event.id, body, userAgent, signals.force);
        const what = `forward: ${event.id} ${event.type} cursor ${event.cursor} attempt ${attempt}`;
        if (o.ok) {
          logLine(`${what} → ${o.status} in ${o.durationMs} ms`);
          delivered = event.cursor;
          break;
        }
        const failure = o.status !== null ? `HTTP ${o.status}` : `${o.error}${o.detail ? ` (${o.detail})` : ''}`;
        if (signals.stop.aborted) {
          logLine(`${what} → ${failure} in ${o.durationMs} ms; stopping, not acked`);
          break outer;
        }
        const delayMs = backoffDelay(attempt, RETRY, o.retryAfterMs);
        logLine(`${what} → ${failure} in ${o.durationMs} ms; retrying in ${delayMs} ms`);
        if (!(await sleep(delayMs, signals.stop))) {
          logLine(`forward: stopping; ${event.id} not delivered, not acked`);
          break outer;
        }
      }
    }
    // Leaving the loop early commits nothing by itself; commit the events that got a 2xx.
    if (delivered !== undefined) {
      await client.ack(delivered, { signal: AbortSignal.timeout(5_000) }).catch((error: Error) => {
        logLine(`forward: could not commit ${delivered} on stop (${error.message}); those events will come again`);
      });
    }
    logLine('forward: stopped');
  } finally {
    signals.dispose();
  }
}

function targetOf(to: string, opts: { secret?: string | undefined; header?: string[] | undefined; timeout: string }, env: Env): DeliveryTarget {
  if (!URL.canParse(to) || !/^https?:$/.test(new URL(to).protocol)) {
    throw new UsageError(`--to: "${to}" is not an absolute http:// or https:// URL`);
  }
  let secret = opts.secret ?? (env.POLLGATE_FORWARD_SECRET || undefined);
  if (secret === undefined) {
    secret = generateSecret();
    process.stderr.write(
      `forward: no --secret given; generated one for this run (configure your handler with it; pass --secret to keep it stable):\n\n    ${secret}\n\n`,
    );
  } else {
    const problem = secretProblem(secret);
    if (problem) throw new UsageError(`--secret: ${problem}`);
  }
  const headers: Record<string, string> = {};
  for (const h of opts.header ?? []) {
    const i = h.indexOf(':');
    const name = i < 0 ? '' : h.slice(0, i).trim();
    const value = i < 0 ? '' : h.slice(i + 1).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/.test(name) || /[\r\n\0]/.test(value)) {
      throw new UsageError(`--header: "${h}" must be "Name: value"`);
    }
    if (RESERVED.has(name.toLowerCase())) throw new UsageError(`--header: ${name} is set by pollgate itself`);
    headers[name] = value;
  }
  const timeoutMs = parseDuration(opts.timeout, '--timeout');
  if (timeoutMs < 1 || timeoutMs > MAX_TIMEOUT_MS) throw new UsageError('--timeout: must be from 1ms to 5m');
  return { url: to, method: 'POST', headers, secret, timeoutMs };
}

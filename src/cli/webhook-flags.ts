/**
 * The webhook's fields as command-line flags, for `pollgate webhooks put|patch|preview|test`:
 * flags → the API's PUT/PATCH fields (client/types.ts WebhookInput). What only the server can
 * judge (a template's syntax, a header HTTP cannot carry, a private target, a duration) is left
 * to it, which names the field; what is wrong on the command line itself (a flag's shape, flags
 * that exclude each other) is a usage error before anything is sent.
 *
 * Secrets need not be typed on the command line (where shell history and `ps` would keep them):
 * --auth-bearer-file, --auth-basic-file and --body-file read a file, `-` reads stdin.
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { Webhook, WebhookAuthInput, WebhookFormat, WebhookInput, WebhookMethod } from '../client/types.ts';
import { parseInteger, UsageError } from './common.ts';

export const METHODS: readonly WebhookMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const FORMATS: readonly WebhookFormat[] = ['json', 'xml', 'form'];

export interface WebhookFlags {
  target?: string;
  secret?: string;
  header: string[];
  method?: string;
  timeoutMs?: string;
  enable?: boolean;
  disable?: boolean;
  format?: string;
  /** false: --no-body. */
  body?: string | false;
  bodyFile?: string;
  authBasic?: string;
  authBasicFile?: string;
  authBearer?: string;
  authBearerFile?: string;
  apiKeyHeader?: string;
  apiKeyQuery?: string;
  /** false: --no-auth (commander makes it true otherwise). */
  auth?: boolean;
  /** false: --no-secret-header. */
  secretHeader?: string | false;
  signing?: boolean;
  missing?: string;
  retrySchedule?: string;
  retryMaxAge?: string;
  retryDefault?: boolean;
  rateLimit?: string;
  alerts?: string;
  alertFailures?: string;
  alertWindow?: string;
}

const collect = (value: string, all: string[]) => [...all, value];

export function addWebhookFlags(cmd: Command): Command {
  return cmd
    .option('--target <url>', 'where events go (http:// or https://); {{path}} tags may stand in its path and query')
    .option('--secret <whsec>', 'the signing secret (whsec_…); generated when a webhook is created without one')
    .option('--header <"Name: value">', 'a header sent with every delivery (repeatable; the value may hold {{path}} tags)', collect, [])
    .option('--method <method>', `${METHODS.join(' | ')} (default POST; GET and DELETE send no body unless --body)`)
    .option('--timeout-ms <ms>', 'per attempt, 1 to 30000 (default 10000)')
    .option('--enable', 'deliver (pushing resumes at the cursor)')
    .option('--disable', 'stop delivering; the webhook stays configured')
    .option('--format <format>', `${FORMATS.join(' | ')}: the body's content type and how its tags are escaped (default json)`)
    .option('--body <template>', 'the body template, e.g. \'{"text": "new: {{data.subject}}", "ticket": {{data}}}\'')
    .option('--body-file <path>', 'read the body template from a file (- for stdin; one final newline dropped, as $(cat) would)')
    .option('--no-body', 'send the envelope (no body template)')
    .option('--auth-basic <user:pass>', 'basic authentication')
    .option('--auth-basic-file <path>', 'basic authentication, "user:pass" read from a file (- for stdin)')
    .option('--auth-bearer <token>', 'a bearer token (e.g. --auth-bearer "$TOKEN", or --auth-bearer-file, to keep it out of shell history)')
    .option('--auth-bearer-file <path>', 'a bearer token read from a file (- for stdin)')
    .option('--api-key-header <NAME=VALUE>', 'an API key sent in this header')
    .option('--api-key-query <NAME=VALUE>', 'an API key sent as this query parameter')
    .option('--no-auth', 'remove the endpoint authentication')
    .option('--secret-header <NAME=VALUE>', 'a static shared-secret header, for receivers that compare one')
    .option('--no-secret-header', 'remove the shared-secret header')
    .option('--signing', 'send Standard Webhooks signature headers (the default)')
    .option('--no-signing', 'send no signature headers (for receivers that refuse unknown headers)')
    .option('--missing <policy>', 'a tag whose path the event lacks: empty (default: renders "") | fail (the attempt fails, and is retried)')
    .option('--retry-schedule <delays>', 'this webhook\'s retry delays, comma-separated, e.g. 30m,1h (the last repeats)')
    .option('--retry-max-age <duration>', 'give up on an event this long after its first failure, e.g. 24h')
    .option('--retry-default', "drop this webhook's retry settings: the server's apply")
    .option('--rate-limit <n|none>', 'at most n deliveries per second (none: no limit)')
    .option('--alerts <on|off|default>', "failure alerts for this webhook (default: the server's settings)")
    .option('--alert-failures <n>', 'failed attempts that make the webhook failing (within --alert-window)')
    .option('--alert-window <duration>', 'the window those failures count in, e.g. 1d');
}

/** "NAME=VALUE" → [name, value]. */
function pair(text: string, flag: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) throw new UsageError(`${flag}: "${text}" must be NAME=VALUE`);
  return [text.slice(0, at), text.slice(at + 1)];
}

/** "Name: value" → [name, value]; the server checks what HTTP can carry. */
function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new UsageError(`--header: "${text}" must be "Name: value"`);
  return [text.slice(0, colon).trim(), text.slice(colon + 1).trim()];
}

/** A file's text (stdin for "-"), one final newline dropped. */
function readText(path: string, flag: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${path === '-' ? 'stdin' : `"${path}"`} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

function oneOf<T extends string>(text: string, allowed: readonly T[], flag: string, fold: (s: string) => string = (s) => s): T {
  const value = fold(text);
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`${flag}: "${text}" must be one of ${allowed.join(', ')}`);
  return value as T;
}

function authFrom(opts: WebhookFlags): WebhookAuthInput | null | undefined {
  const given: Array<[string, () => WebhookAuthInput | null]> = [];
  const basic = (text: string, flag: string): WebhookAuthInput => {
    const colon = text.indexOf(':');
    if (colon <= 0) throw new UsageError(`${flag}: must be "user:pass"`);
    return { type: 'basic', username: text.slice(0, colon), password: text.slice(colon + 1) };
  };
  if (opts.authBasic !== undefined) given.push(['--auth-basic', () => basic(opts.authBasic!, '--auth-basic')]);
  if (opts.authBasicFile !== undefined) given.push(['--auth-basic-file', () => basic(readText(opts.authBasicFile!, '--auth-basic-file'), '--auth-basic-file')]);
  if (opts.authBearer !== undefined) given.push(['--auth-bearer', () => ({ type: 'bearer', token: opts.authBearer! })]);
  if (opts.authBearerFile !== undefined) given.push(['--auth-bearer-file', () => ({ type: 'bearer', token: readText(opts.authBearerFile!, '--auth-bearer-file') })]);
  for (const [flag, where] of [['--api-key-header', 'header'], ['--api-key-query', 'query']] as const) {
    const text = flag === '--api-key-header' ? opts.apiKeyHeader : opts.apiKeyQuery;
    if (text === undefined) continue;
    given.push([flag, () => {
      const [name, value] = pair(text, flag);
      return { type: 'api_key', in: where, name, value };
    }]);
  }
  if (opts.auth === false) given.push(['--no-auth', () => null]);
  if (given.length > 1) throw new UsageError(`${given.map(([flag]) => flag).join(', ')} exclude each other: one kind of authentication`);
  return given[0]?.[1]();
}

function bodyFrom(opts: WebhookFlags): string | null | undefined {
  if (opts.bodyFile !== undefined && opts.body !== undefined) throw new UsageError('--body-file excludes --body and --no-body');
  if (opts.bodyFile !== undefined) return readText(opts.bodyFile, '--body-file');
  if (opts.body === false) return null;
  return opts.body;
}

function retryFrom(opts: WebhookFlags): { schedule?: string[]; max_age?: string } | null | undefined {
  const partial = opts.retrySchedule !== undefined || opts.retryMaxAge !== undefined;
  if (opts.retryDefault) {
    if (partial) throw new UsageError('--retry-default excludes --retry-schedule and --retry-max-age');
    return null;
  }
  if (!partial) return undefined;
  const retry: { schedule?: string[]; max_age?: string } = {};
  if (opts.retrySchedule !== undefined) {
    const schedule = opts.retrySchedule.split(',').map((d) => d.trim());
    if (schedule.some((d) => d === '')) throw new UsageError(`--retry-schedule: "${opts.retrySchedule}" must be delays separated by commas, e.g. 30m,1h`);
    retry.schedule = schedule;
  }
  if (opts.retryMaxAge !== undefined) retry.max_age = opts.retryMaxAge;
  return retry;
}

function alertsFrom(opts: WebhookFlags): { enabled?: boolean; failures?: number; window?: string } | null | undefined {
  const mode = opts.alerts === undefined ? undefined : oneOf(opts.alerts, ['on', 'off', 'default'] as const, '--alerts', (s) => s.toLowerCase());
  const partial = opts.alertFailures !== undefined || opts.alertWindow !== undefined;
  if (mode === 'default') {
    if (partial) throw new UsageError('--alerts default excludes --alert-failures and --alert-window');
    return null;
  }
  if (mode === undefined && !partial) return undefined;
  const alerts: { enabled?: boolean; failures?: number; window?: string } = {};
  if (mode !== undefined) alerts.enabled = mode === 'on';
  if (opts.alertFailures !== undefined) alerts.failures = parseInteger(opts.alertFailures, '--alert-failures', 1, 100);
  if (opts.alertWindow !== undefined) alerts.window = opts.alertWindow;
  return alerts;
}

/** The fields the flags set (only those given: a PATCH changes nothing else). */
export function webhookFields(opts: WebhookFlags): Partial<WebhookInput> {
  if (opts.enable && opts.disable) throw new UsageError('--enable and --disable exclude each other');
  const fields: Partial<WebhookInput> = {};
  if (opts.target !== undefined) fields.url = opts.target;
  if (opts.secret !== undefined) fields.secret = opts.secret;
  if (opts.header.length > 0) fields.headers = Object.fromEntries(opts.header.map(parseHeader));
  if (opts.method !== undefined) fields.method = oneOf(opts.method, METHODS, '--method', (s) => s.toUpperCase());
  if (opts.timeoutMs !== undefined) fields.timeout_ms = parseInteger(opts.timeoutMs, '--timeout-ms', 1, 30_000);
  if (opts.enable) fields.enabled = true;
  if (opts.disable) fields.enabled = false;
  if (opts.format !== undefined) fields.format = oneOf(opts.format, FORMATS, '--format', (s) => s.toLowerCase());
  const body = bodyFrom(opts);
  if (body !== undefined) fields.body = body;
  const auth = authFrom(opts);
  if (auth !== undefined) fields.auth = auth;
  if (opts.secretHeader === false) fields.secret_header = null;
  else if (opts.secretHeader !== undefined) {
    const [name, value] = pair(opts.secretHeader, '--secret-header');
    fields.secret_header = { name, value };
  }
  if (opts.signing !== undefined) fields.signing = opts.signing;
  if (opts.missing !== undefined) fields.missing = oneOf(opts.missing, ['empty', 'fail'] as const, '--missing', (s) => s.toLowerCase());
  const retry = retryFrom(opts);
  if (retry !== undefined) fields.retry = retry;
  if (opts.rateLimit !== undefined) {
    if (opts.rateLimit === 'none') fields.rate_limit = null;
    else {
      const rate = Number(opts.rateLimit);
      if (!/^\d+(\.\d+)?$/.test(opts.rateLimit) || !(rate > 0) || rate > 10_000) {
        throw new UsageError(`--rate-limit: "${opts.rateLimit}" must be a number of deliveries per second, more than 0 and at most 10000, or none`);
      }
      fields.rate_limit = rate;
    }
  }
  const alerts = alertsFrom(opts);
  if (alerts !== undefined) fields.alerts = alerts;
  return fields;
}

/**
 * A PATCH replaces `retry` and `alerts` whole; on the command line, --retry-max-age alone
 * means "keep the schedule". Fills in the parts the flags leave out from the stored webhook.
 */
export function keepUnnamedParts(fields: Partial<WebhookInput>, current: Webhook): Partial<WebhookInput> {
  const out = { ...fields };
  if (fields.retry && current.retry) {
    const stored = current.retry;
    out.retry = {
      ...(stored.schedule ? { schedule: stored.schedule } : {}),
      ...(stored.max_age ? { max_age: stored.max_age } : {}),
      ...fields.retry,
    };
  }
  if (fields.alerts && current.alerts) {
    const stored = current.alerts;
    out.alerts = {
      ...(stored.enabled !== null ? { enabled: stored.enabled } : {}),
      ...(stored.failures !== null ? { failures: stored.failures } : {}),
      ...(stored.window !== null ? { window: stored.window } : {}),
      ...fields.alerts,
    };
  }
  return out;
}

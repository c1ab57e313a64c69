/**
 * `pollgate webhooks …`, `pollgate deliveries` and `pollgate bridge …`: push mode from the
 * command line (admin key). Output as in output.ts: JSON for scripts, tables for people.
 */
import type { Command } from 'commander';
import { createAdminClient } from '../client/index.ts';
import type { BridgeState, Delivery, DeliveryList, Webhook, WebhookInput, WebhookWithSecret } from '../client/types.ts';
import { connection, parseInteger, UsageError, type Env } from './common.ts';
import { adminCommand, ago, block, print, table, type OutputOptions } from './output.ts';

interface Conn extends OutputOptions {
  url?: string;
  key?: string;
}

interface WebhookFlags extends Conn {
  target?: string;
  secret?: string;
  header: string[];
  method?: string;
  timeoutMs?: string;
  enable?: boolean;
  disable?: boolean;
}

const admin = (opts: Conn, env: Env) => createAdminClient(connection(opts, env, 'admin'));
const collect = (value: string, all: string[]) => [...all, value];
const METHODS = ['POST', 'PUT', 'PATCH'] as const;

/** "Name: value" → [name, value]; the server checks what HTTP can carry. */
function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new UsageError(`--header: "${text}" must be "Name: value"`);
  return [text.slice(0, colon).trim(), text.slice(colon + 1).trim()];
}

function webhookFields(opts: WebhookFlags): Partial<WebhookInput> {
  if (opts.enable && opts.disable) throw new UsageError('--enable and --disable exclude each other');
  const fields: Partial<WebhookInput> = {};
  if (opts.target !== undefined) fields.url = opts.target;
  if (opts.secret !== undefined) fields.secret = opts.secret;
  if (opts.header.length > 0) fields.headers = Object.fromEntries(opts.header.map(parseHeader));
  if (opts.method !== undefined) {
    const method = opts.method.toUpperCase();
    if (!(METHODS as readonly string[]).includes(method)) throw new UsageError(`--method: "${opts.method}" must be one of ${METHODS.join(', ')}`);
    fields.method = method as (typeof METHODS)[number];
  }
  if (opts.timeoutMs !== undefined) fields.timeout_ms = parseInteger(opts.timeoutMs, '--timeout-ms', 1, 30_000);
  if (opts.enable) fields.enabled = true;
  if (opts.disable) fields.enabled = false;
  return fields;
}

function addWebhookFlags(cmd: Command): Command {
  return cmd
    .option('--target <url>', 'where events are delivered (http:// or https://)')
    .option('--secret <whsec>', 'the signing secret (whsec_…); generated when a webhook is created without one')
    .option('--header <"Name: value">', 'a header sent with every delivery (repeatable)', collect, [])
    .option('--method <method>', `${METHODS.join(' | ')} (default POST)`)
    .option('--timeout-ms <ms>', 'per attempt, 1 to 30000 (default 10000)')
    .option('--enable', 'deliver (pushing resumes at the cursor)')
    .option('--disable', 'stop delivering; the webhook stays configured');
}

export function renderWebhook(w: Webhook | WebhookWithSecret): string {
  const h = w.health;
  const state = w.enabled ? (h.consecutive_failures > 0 ? 'failing' : 'delivering') : `paused${w.disabled_reason ? ` (${w.disabled_reason})` : ''}`;
  const pairs: Array<[string, string | number | null]> = [
    ['consumer', w.consumer_id],
    ['target', `${w.method} ${w.url}`],
    ['state', state],
    ['headers', Object.keys(w.headers).length > 0 ? Object.keys(w.headers).join(', ') : null],
    ['timeout', `${w.timeout_ms} ms`],
    ['last success', ago(h.last_success_at)],
    ['last error', h.last_error],
    ['failures in a row', h.consecutive_failures],
    // A paused webhook has no next attempt, whatever the retry state says.
    ['next attempt', w.enabled && h.next_attempt_at ? ago(h.next_attempt_at) : null],
  ];
  if ('secret' in w && w.secret) pairs.push(['secret', `${w.secret}   (shown only now)`]);
  return block(pairs);
}

function renderDeliveries(list: DeliveryList): string {
  const rows = list.deliveries.map((d: Delivery) => [
    d.at,
    d.event_id,
    d.attempt,
    d.status ?? '-',
    d.error ?? 'ok',
    `${d.duration_ms} ms`,
    d.next_attempt_at ? ago(d.next_attempt_at) : '-',
  ]);
  const more = list.next !== null ? `(more: --before ${list.next})\n` : '';
  return table(['at', 'event', 'attempt', 'status', 'result', 'took', 'next attempt'], rows, '(no delivery attempts)') + more;
}

function renderBridge(b: BridgeState): string {
  const pushing = b.enabled ? 'on' : 'PAUSED (the log keeps growing; no cursor moves)';
  return block([
    ['pushing', pushing],
    ['push consumers', b.consumers_in_push_mode ?? null],
  ]);
}

export function addWebhookCommands(program: Command, env: Env): void {
  const webhooks = program.command('webhooks').description("a consumer's webhook: push mode (admin key)");
  const consumerArg = ['<consumer>', 'the consumer id (con_…)'] as const;

  adminCommand(
    addWebhookFlags(
      webhooks
        .command('put')
        .description('set the webhook (the consumer goes to push mode at its cursor); prints it, with a generated secret shown once')
        .argument(...consumerArg),
    ),
  ).action(async (id: string, opts: WebhookFlags) => {
    const fields = webhookFields(opts);
    if (fields.url === undefined) throw new UsageError('--target <url> is required');
    await print(opts, await admin(opts, env).setWebhook(id, fields as WebhookInput), renderWebhook);
  });

  adminCommand(
    addWebhookFlags(webhooks.command('patch').description('change some fields, e.g. --disable to pause this consumer').argument(...consumerArg)),
  ).action(async (id: string, opts: WebhookFlags) => {
    const fields = webhookFields(opts);
    if (Object.keys(fields).length === 0) {
      throw new UsageError('nothing to change: give at least one of --target, --secret, --header, --method, --timeout-ms, --enable, --disable');
    }
    await print(opts, await admin(opts, env).updateWebhook(id, fields), renderWebhook);
  });

  adminCommand(webhooks.command('get').description('show the webhook and its delivery health').argument(...consumerArg)).action(
    async (id: string, opts: Conn) => {
      await print(opts, await admin(opts, env).getWebhook(id), renderWebhook);
    },
  );

  adminCommand(
    webhooks.command('delete').description('remove the webhook: the consumer returns to polling at the cursor the bridge reached').argument(...consumerArg),
  ).action(async (id: string, opts: Conn) => {
    const consumer = await admin(opts, env).deleteWebhook(id);
    await print(opts, consumer, (c) => block([['consumer', c.id], ['mode', c.mode], ['cursor', c.cursor]]));
  });

  adminCommand(
    program
      .command('deliveries')
      .description("a push consumer's delivery attempts, newest first (admin key)")
      .argument(...consumerArg)
      .option('--limit <n>', 'attempts per page, 1 to 1000', '20')
      .option('--before <n>', 'older than this (the `next` of a previous page)'),
  ).action(async (id: string, opts: Conn & { limit: string; before?: string }) => {
    const list = await admin(opts, env).deliveries(id, {
      limit: parseInteger(opts.limit, '--limit', 1, 1000),
      ...(opts.before !== undefined ? { before: parseInteger(opts.before, '--before', 0, Number.MAX_SAFE_INTEGER) } : {}),
    });
    await print(opts, list, renderDeliveries);
  });

  const bridge = program.command('bridge').description('the push bridge switch, for every consumer on every node (admin key)');
  adminCommand(bridge.command('status', { isDefault: true }).description('is pushing on?')).action(async (opts: Conn) => {
    await print(opts, await admin(opts, env).bridge(), renderBridge);
  });
  adminCommand(bridge.command('pause').description('stop every push at once (attempts in flight may finish; none starts after this answers)')).action(
    async (opts: Conn) => {
      await print(opts, await admin(opts, env).setBridge(false), renderBridge);
    },
  );
  adminCommand(bridge.command('resume').description('push again, exactly where each consumer stopped')).action(async (opts: Conn) => {
    await print(opts, await admin(opts, env).setBridge(true), renderBridge);
  });
}

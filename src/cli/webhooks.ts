/**
 * `pollgate webhooks …`, `pollgate deliveries` and `pollgate bridge …`: push mode from the
 * command line (admin key). Output as in output.ts: JSON for scripts, tables for people.
 */
import type { Command } from 'commander';
import { createAdminClient } from '../client/index.ts';
import type {
  BridgeState,
  Delivery,
  DeliveryList,
  Webhook,
  WebhookInput,
  WebhookPreview,
  WebhookRequest,
  WebhookTestResult,
  WebhookTryInput,
  WebhookWithSecret,
} from '../client/types.ts';
import { connection, parseJsonFlag, parseInteger, UsageError, type Env } from './common.ts';
import { adminCommand, ago, block, print, table, type OutputOptions } from './output.ts';
import { addWebhookFlags, keepUnnamedParts, webhookFields, type WebhookFlags } from './webhook-flags.ts';

interface Conn extends OutputOptions {
  url?: string;
  key?: string;
}

type ShapeFlags = Conn & WebhookFlags;

interface TryFlags extends ShapeFlags {
  cursor?: string;
  type?: string;
  data?: string;
}

const admin = (opts: Conn, env: Env) => createAdminClient(connection(opts, env, 'admin'));

/** One line of at most `max` characters, for a table cell. */
export function oneLine(text: string | null | undefined, max: number): string | null {
  if (text === null || text === undefined || text === '') return null;
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function describeAuth(auth: Webhook['auth']): string | null {
  if (!auth) return null;
  if (auth.type === 'basic') return `basic (user ${auth.username})`;
  if (auth.type === 'api_key') return `api key in ${auth.in} ${auth.name}`;
  return 'bearer token';
}

export function renderWebhook(w: Webhook | WebhookWithSecret): string {
  const h = w.health;
  const failing = h.failing || h.consecutive_failures > 0;
  const state = w.enabled ? (failing ? 'failing' : 'delivering') : `paused${w.disabled_reason ? ` (${w.disabled_reason})` : ''}`;
  const retry = w.retry && [w.retry.schedule ? `every ${w.retry.schedule.join(', ')}` : null, w.retry.max_age ? `for ${w.retry.max_age}` : null].filter(Boolean).join(' ');
  const alerts =
    w.alerts &&
    (w.alerts.enabled === false
      ? 'off'
      : [w.alerts.failures !== null ? `${w.alerts.failures} failures` : null, w.alerts.window ? `within ${w.alerts.window}` : null].filter(Boolean).join(' ') || 'on');
  const pairs: Array<[string, string | number | null]> = [
    ['consumer', w.consumer_id],
    ['target', `${w.method} ${w.url}`],
    ['state', state],
    ['format', w.format],
    ['body', w.body === null ? '(the envelope)' : oneLine(w.body, 100)],
    ['headers', Object.keys(w.headers).length > 0 ? Object.keys(w.headers).join(', ') : null],
    ['auth', describeAuth(w.auth)],
    ['secret header', w.secret_header?.name ?? null],
    ['signing', w.signing ? 'on' : 'off'],
    ['missing tags', w.missing === 'fail' ? 'fail the attempt' : 'render empty'],
    ['retry', retry || "server's"],
    ['rate limit', w.rate_limit === null ? null : `${w.rate_limit}/s`],
    ['alerts', alerts || "server's"],
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

function renderRequest(request: WebhookRequest): string {
  const headers = Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`);
  return [`${request.method} ${request.url}`, ...headers, '', request.body ?? '(no body)'].join('\n') + '\n';
}

function eventLine(event: WebhookPreview['event']): string {
  return `${event.id} ${event.type} ${event.cursor === null ? '(a sample)' : `at ${event.cursor}`}`;
}

function renderPreview(p: WebhookPreview): string {
  const head = block([['event', eventLine(p.event)]]);
  if (!p.request) return `${head}${block([['error', `render: ${p.error}`]])}`;
  return `${head}\n${renderRequest(p.request)}`;
}

function renderTest(r: WebhookTestResult): string {
  const result = r.ok ? 'ok' : `failed: ${r.error}${r.detail ? ` (${r.detail})` : ''}`;
  let out = block([
    ['event', eventLine(r.event)],
    ['request', r.request ? `${r.request.method} ${r.request.url}` : null],
    ['result', result],
    ['status', r.status],
    ['took', `${r.duration_ms} ms`],
  ]);
  if (r.response) {
    const headers = Object.entries(r.response.headers).map(([name, value]) => `${name}: ${value}`);
    out += `\nresponse${r.response.truncated ? ' (the first KiB)' : ''}:\n${[...headers, '', r.response.body].join('\n')}\n`;
  }
  return out;
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
    oneLine(d.response, 40),
  ]);
  const more = list.next !== null ? `(more: --before ${list.next})\n` : '';
  return table(['at', 'event', 'attempt', 'status', 'result', 'took', 'next attempt', 'response'], rows, '(no delivery attempts)') + more;
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
  ).action(async (id: string, opts: ShapeFlags) => {
    const fields = webhookFields(opts);
    if (fields.url === undefined) throw new UsageError('--target <url> is required');
    await print(opts, await admin(opts, env).setWebhook(id, fields as WebhookInput), renderWebhook);
  });

  adminCommand(
    addWebhookFlags(webhooks.command('patch').description('change some fields, e.g. --disable to pause this consumer').argument(...consumerArg)),
  ).action(async (id: string, opts: ShapeFlags) => {
    let fields = webhookFields(opts);
    if (Object.keys(fields).length === 0) throw new UsageError('nothing to change: give at least one field flag (see --help), e.g. --disable');
    const client = admin(opts, env);
    // --retry-max-age alone keeps the stored schedule (and the same for alerts): read it first.
    if (fields.retry || fields.alerts) fields = keepUnnamedParts(fields, await client.getWebhook(id));
    await print(opts, await client.updateWebhook(id, fields), renderWebhook);
  });

  const tryCommand = (name: string, description: string) =>
    adminCommand(
      addWebhookFlags(
        webhooks
          .command(name)
          .description(description)
          .argument(...consumerArg)
          .option('--cursor <cursor>', "an event of the consumer's tenant (default: a sample event)")
          .option('--type <type>', 'the sample event\'s type (default pollgate.webhook.test)')
          .option('--data <json>', 'the sample event\'s data, e.g. \'{"subject":"VPN down"}\''),
      ),
    );
  const tryInput = (opts: TryFlags): WebhookTryInput => {
    if (opts.cursor !== undefined && (opts.type !== undefined || opts.data !== undefined)) throw new UsageError('--cursor excludes --type and --data (they describe a sample)');
    const changes = webhookFields(opts);
    const event = {
      ...(opts.type !== undefined ? { type: opts.type } : {}),
      ...(opts.data !== undefined ? { data: parseJsonFlag(opts.data, '--data') } : {}),
    };
    return {
      ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}),
      ...(Object.keys(event).length > 0 ? { event } : {}),
      ...(Object.keys(changes).length > 0 ? { webhook: changes } : {}),
    };
  };

  tryCommand('preview', 'show the request the webhook would send for an event (or a sample), without sending it; field flags try unsaved changes').action(
    async (id: string, opts: TryFlags) => {
      await print(opts, await admin(opts, env).previewWebhook(id, tryInput(opts)), renderPreview);
    },
  );

  tryCommand('test', "send that request now and show the receiver's answer (status, time, headers, first KiB of body); records nothing, moves no cursor").action(
    async (id: string, opts: TryFlags) => {
      await print(opts, await admin(opts, env).testWebhook(id, tryInput(opts)), renderTest);
    },
  );

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

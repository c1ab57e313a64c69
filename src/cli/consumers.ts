/**
 * `pollgate consumers …` and `pollgate publish`: thin admin commands over the admin client.
 * Each prints the API's answer (output.ts): JSON when piped or with --json (`list` prints every
 * page as one array), so they compose with jq; tables and key/value blocks at a terminal.
 */
import type { Command } from 'commander';
import { createAdminClient } from '../client/index.ts';
import type { Consumer, ConsumerWithKey, CreateConsumerInput, Filter, PublishInput, UpdateConsumerInput } from '../client/types.ts';
import {
  connection,
  parseJsonFlag,
  parsePosition,
  POSITION_HELP,
  UsageError,
  type Env,
} from './common.ts';
import { adminCommand, ago, block, print, table, type OutputOptions } from './output.ts';

interface Conn extends OutputOptions {
  url?: string;
  key?: string;
}

function renderConsumer(c: Consumer | ConsumerWithKey): string {
  const pairs: Array<[string, string | number | null]> = [
    ['id', c.id],
    ['tenant', c.tenant],
    ['name', c.name],
    ['mode', c.mode],
    ['filter', c.filter === null ? null : JSON.stringify(c.filter)],
    ['cursor', c.cursor],
    ['lag', c.lag],
    ['polling', c.polling === undefined ? null : c.polling ? 'yes' : 'no'],
  ];
  if (c.webhook) pairs.push(['webhook', `${c.webhook.enabled ? 'on' : 'paused'} → ${c.webhook.url}`]);
  if ('key' in c) pairs.push(['key', `${c.key}   (shown only now)`]);
  return block(pairs);
}

function renderConsumers(list: Consumer[]): string {
  const rows = list.map((c) => [c.id, c.tenant, c.name, c.mode, c.lag, c.polling ? 'yes' : 'no', ago((c as { last_poll_at?: string | null }).last_poll_at)]);
  return table(['id', 'tenant', 'name', 'mode', 'lag', 'polling', 'last poll'], rows, '(no consumers)');
}

const admin = (opts: Conn, env: Env) => createAdminClient(connection(opts, env, 'admin'));


export function addConsumerCommands(program: Command, env: Env): void {
  const consumers = program
    .command('consumers')
    .description('create, list, inspect, seek and delete consumers (admin key)');

  adminCommand(
    consumers
      .command('create')
      .description('create a consumer; prints it with its key (shown only now)')
      .requiredOption('--tenant <tenant>', 'the tenant whose events it reads')
      .option('--name <name>', 'a name, unique within the tenant')
      .option('--filter <json>', 'a filter, e.g. \'{"types":["ticket.*"]}\'')
      .option('--start <position>', `where it starts: ${POSITION_HELP}`, 'latest')
  ).action(async (opts: Conn & { tenant: string; name?: string; filter?: string; start: string }) => {
    const input: CreateConsumerInput = { tenant: opts.tenant, start: parsePosition(opts.start, '--start') };
    if (opts.name !== undefined) input.name = opts.name;
    if (opts.filter !== undefined) input.filter = parseJsonFlag(opts.filter, '--filter') as Filter;
    await print(opts, await admin(opts, env).createConsumer(input), renderConsumer);
  });

  adminCommand(
    consumers
      .command('list')
      .description('list consumers (every page) as a JSON array')
      .option('--tenant <tenant>', 'only this tenant')
  ).action(async (opts: Conn & { tenant?: string }) => {
    const client = admin(opts, env);
    const all = [];
    let after: string | undefined;
    do {
      const page = await client.listConsumers({
        limit: 1000,
        ...(opts.tenant !== undefined ? { tenant: opts.tenant } : {}),
        ...(after !== undefined ? { after } : {}),
      });
      all.push(...page.consumers);
      after = page.next ?? undefined;
    } while (after !== undefined);
    await print(opts, all, renderConsumers);
  });

  adminCommand(
    consumers.command('get').description('show one consumer').argument('<id>', 'the consumer id (con_…)')
  ).action(async (id: string, opts: Conn) => {
    await print(opts, await admin(opts, env).getConsumer(id), renderConsumer);
  });

  adminCommand(
    consumers
      .command('seek')
      .description("move a consumer's committed cursor")
      .argument('<id>', 'the consumer id (con_…)')
      .requiredOption('--to <position>', POSITION_HELP)
  ).action(async (id: string, opts: Conn & { to: string }) => {
    await print(opts, await admin(opts, env).seek(id, parsePosition(opts.to, '--to')), renderConsumer);
  });

  adminCommand(
    consumers
      .command('rotate-key')
      .description('issue a new key (the old one stops working); prints the consumer with it')
      .argument('<id>', 'the consumer id (con_…)')
  ).action(async (id: string, opts: Conn) => {
    await print(opts, await admin(opts, env).rotateKey(id), renderConsumer);
  });

  adminCommand(
    consumers.command('delete').description('delete a consumer').argument('<id>', 'the consumer id (con_…)')
  ).action(async (id: string, opts: Conn) => {
    await admin(opts, env).deleteConsumer(id);
    await print(opts, { deleted: id }, () => `deleted ${id}\n`);
  });

  adminCommand(
    consumers
      .command('update')
      .description('rename a consumer or change its filter (a held poll ends; the next one uses the change)')
      .argument('<id>', 'the consumer id (con_…)')
      .option('--name <name>', 'a new name, unique within the tenant')
      .option('--filter <json>', 'a new filter, e.g. \'{"types":["ticket.*"]}\'')
      .option('--no-filter', 'remove the filter (every event)')
  ).action(async (id: string, opts: Conn & { name?: string; filter?: string | false }) => {
    const patch: UpdateConsumerInput = {};
    if (opts.name !== undefined) patch.name = opts.name;
    if (opts.filter === false) patch.filter = null;
    else if (opts.filter !== undefined) patch.filter = parseJsonFlag(opts.filter, '--filter') as Filter;
    if (Object.keys(patch).length === 0) throw new UsageError('nothing to change: give --name, --filter or --no-filter');
    await print(opts, await admin(opts, env).updateConsumer(id, patch), renderConsumer);
  });

  adminCommand(
    program
      .command('publish')
      .description('publish one event (admin key); prints its envelope')
      .requiredOption('--tenant <tenant>', 'the tenant it belongs to')
      .requiredOption('--type <type>', 'e.g. ticket.created')
      .option('--data <json>', 'the payload (any JSON)', 'null')
      .option('--id <id>', 'idempotency key: an id already published stores nothing new')
  ).action(async (opts: Conn & { tenant: string; type: string; data: string; id?: string }) => {
    const event: PublishInput = { tenant: opts.tenant, type: opts.type, data: parseJsonFlag(opts.data, '--data') };
    if (opts.id !== undefined) event.id = opts.id;
    await print(opts, await admin(opts, env).publish(event), (e) => block([['id', e.id], ['cursor', e.cursor], ['time', e.time]]));
  });
}

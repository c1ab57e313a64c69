/**
 * `pollgate consumers …` and `pollgate publish`: thin admin commands over the admin client.
 * Each prints the API's answer as JSON on stdout (`list` prints every page as one array), so
 * they compose with jq.
 */
import type { Command } from 'commander';
import { createAdminClient } from '../client/index.ts';
import type { CreateConsumerInput, Filter, PublishInput } from '../client/types.ts';
import {
  addConnectionOptions,
  connection,
  parseJsonFlag,
  parsePosition,
  POSITION_HELP,
  printJson,
  type Env,
} from './common.ts';

interface Conn {
  url?: string;
  key?: string;
}

const admin = (opts: Conn, env: Env) => createAdminClient(connection(opts, env, 'admin'));

export function addConsumerCommands(program: Command, env: Env): void {
  const consumers = program
    .command('consumers')
    .description('create, list, inspect, seek and delete consumers (admin key)');

  addConnectionOptions(
    consumers
      .command('create')
      .description('create a consumer; prints it with its key (shown only now)')
      .requiredOption('--tenant <tenant>', 'the tenant whose events it reads')
      .option('--name <name>', 'a name, unique within the tenant')
      .option('--filter <json>', 'a filter, e.g. \'{"types":["ticket.*"]}\'')
      .option('--start <position>', `where it starts: ${POSITION_HELP}`, 'latest'),
    'admin',
  ).action(async (opts: Conn & { tenant: string; name?: string; filter?: string; start: string }) => {
    const input: CreateConsumerInput = { tenant: opts.tenant, start: parsePosition(opts.start, '--start') };
    if (opts.name !== undefined) input.name = opts.name;
    if (opts.filter !== undefined) input.filter = parseJsonFlag(opts.filter, '--filter') as Filter;
    await printJson(await admin(opts, env).createConsumer(input));
  });

  addConnectionOptions(
    consumers
      .command('list')
      .description('list consumers (every page) as a JSON array')
      .option('--tenant <tenant>', 'only this tenant'),
    'admin',
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
    await printJson(all);
  });

  addConnectionOptions(
    consumers.command('get').description('show one consumer').argument('<id>', 'the consumer id (con_…)'),
    'admin',
  ).action(async (id: string, opts: Conn) => {
    await printJson(await admin(opts, env).getConsumer(id));
  });

  addConnectionOptions(
    consumers
      .command('seek')
      .description("move a consumer's committed cursor")
      .argument('<id>', 'the consumer id (con_…)')
      .requiredOption('--to <position>', POSITION_HELP),
    'admin',
  ).action(async (id: string, opts: Conn & { to: string }) => {
    await printJson(await admin(opts, env).seek(id, parsePosition(opts.to, '--to')));
  });

  addConnectionOptions(
    consumers
      .command('rotate-key')
      .description('issue a new key (the old one stops working); prints the consumer with it')
      .argument('<id>', 'the consumer id (con_…)'),
    'admin',
  ).action(async (id: string, opts: Conn) => {
    await printJson(await admin(opts, env).rotateKey(id));
  });

  addConnectionOptions(
    consumers.command('delete').description('delete a consumer').argument('<id>', 'the consumer id (con_…)'),
    'admin',
  ).action(async (id: string, opts: Conn) => {
    await admin(opts, env).deleteConsumer(id);
    await printJson({ deleted: id });
  });

  addConnectionOptions(
    program
      .command('publish')
      .description('publish one event (admin key); prints its envelope')
      .requiredOption('--tenant <tenant>', 'the tenant it belongs to')
      .requiredOption('--type <type>', 'e.g. ticket.created')
      .option('--data <json>', 'the payload (any JSON)', 'null')
      .option('--id <id>', 'idempotency key: an id already published stores nothing new'),
    'admin',
  ).action(async (opts: Conn & { tenant: string; type: string; data: string; id?: string }) => {
    const event: PublishInput = { tenant: opts.tenant, type: opts.type, data: parseJsonFlag(opts.data, '--data') };
    if (opts.id !== undefined) event.id = opts.id;
    await printJson(await admin(opts, env).publish(event));
  });
}

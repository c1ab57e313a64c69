/**
 * `pollgate tail`: long-polls with a consumer key and prints each event as one NDJSON line on
 * stdout. By default it acks what it printed (a line counts as printed once stdout took it);
 * `--no-ack` only reads, moving on with `after`, and leaves the consumer's cursor alone.
 * Retries and warnings go to stderr, so stdout stays pure NDJSON. SIGINT/SIGTERM stop it
 * cleanly (exit 0), committing what was printed.
 */
import type { Command } from 'commander';
import { createClient, type IterateOptions } from '../client/index.ts';
import {
  addConnectionOptions,
  connection,
  logLine,
  parseInteger,
  parseSeconds,
  stopSignals,
  UsageError,
  write,
  type Env,
} from './common.ts';

interface TailOptions {
  url?: string;
  key?: string;
  wait: string;
  limit?: string;
  ack: boolean;
  after?: string;
  count?: string;
}

export function addTailCommand(program: Command, env: Env): void {
  addConnectionOptions(
    program
      .command('tail')
      .description('print events as NDJSON on stdout, acking after printing (consumer key)')
      .option('--wait <seconds>', 'how long each poll holds', '25')
      .option('--limit <n>', 'most events per poll (1-1000)')
      .option('--no-ack', 'only read: move on with `after`, never commit')
      .option('--after <cursor>', 'with --no-ack: start after this cursor (default: the committed one)')
      .option('--count <n>', 'exit after printing this many events'),
    'consumer',
  ).action(async (opts: TailOptions) => {
    const conn = connection(opts, env, 'consumer');
    const wait = parseSeconds(opts.wait, '--wait');
    const count = opts.count === undefined ? Infinity : parseInteger(opts.count, '--count', 1, Number.MAX_SAFE_INTEGER);
    if (opts.after !== undefined && opts.ack) throw new UsageError('--after needs --no-ack (to move a committed cursor use `pollgate consumers seek`)');

    const limit = opts.limit === undefined ? undefined : parseInteger(opts.limit, '--limit', 1, 1000);

    const client = createClient(conn);
    const signals = stopSignals();
    // A closed pipe (`pollgate tail | head -1`) is an ordinary way to stop.
    let pipeClosed = false;
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') pipeClosed = true;
    });
    const iterate: IterateOptions = {
      wait,
      ack: opts.ack,
      signal: signals.stop,
      onError: (error, { delayMs }) => logLine(`tail: poll failed (${error.message}); retrying in ${delayMs} ms`),
    };
    if (limit !== undefined) iterate.limit = limit;
    if (opts.after !== undefined) iterate.after = opts.after;

    let printed = 0;
    try {
      for await (const event of client.events(iterate)) {
        await write(process.stdout, `${JSON.stringify(event)}\n`);
        printed += 1;
        if (printed >= count) {
          // Leaving with `break` commits nothing by itself: commit what was printed.
          if (opts.ack) await client.ack(event.cursor);
          break;
        }
      }
    } catch (error) {
      if (pipeClosed || (error as NodeJS.ErrnoException).code === 'EPIPE') return;
      throw error;
    } finally {
      signals.dispose();
    }
  });
}

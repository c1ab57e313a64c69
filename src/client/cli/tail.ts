/**
 * `tail`: long-polls with a consumer key and prints each event as one NDJSON line on stdout.
 * By default it acks what it printed (a line counts as printed once stdout took it); `--no-ack`
 * only reads, moving on with `after`, and leaves the consumer's cursor alone. Retries and
 * warnings go to stderr, so stdout stays pure NDJSON. SIGINT/SIGTERM stop it cleanly (exit 0),
 * committing what was printed. The same code runs as `pollgate tail` and `pollgate-client tail`.
 */
import { createClient, type IterateOptions } from '../index.ts';
import { parseArgs } from 'node:util';
import {
  asUsage,
  CONNECTION_HELP,
  CONNECTION_OPTIONS,
  connection,
  logLine,
  parseInteger,
  parseSeconds,
  stopSignals,
  UsageError,
  write,
  type CommandContext,
} from './args.ts';

export const TAIL_SUMMARY = 'print events as NDJSON on stdout, acking after printing (consumer key)';

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  wait: { type: 'string', default: '25' },
  limit: { type: 'string' },
  'no-ack': { type: 'boolean', default: false },
  after: { type: 'string' },
  count: { type: 'string' },
} as const;

export function tailHelp(name: string): string {
  return (
    `Usage: ${name} [options]\n\n${TAIL_SUMMARY}\n\nOptions:\n` +
    '  --wait <seconds>    how long each poll holds, lowered to the server\'s maximum (default: "25")\n' +
    '  --limit <n>         most events per poll (1-1000)\n' +
    '  --no-ack            only read: move on with `after`, never commit\n' +
    '  --after <cursor>    with --no-ack: start after this cursor (default: the committed one)\n' +
    '  --count <n>         exit after printing this many events\n' +
    CONNECTION_HELP
  );
}

export async function runTail(argv: string[], ctx: CommandContext): Promise<void> {
  const opts = asUsage(() => parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values);
  if (opts.help) {
    await write(process.stdout, tailHelp(ctx.name));
    return;
  }
  const conn = connection(opts, ctx.env);
  const wait = parseSeconds(opts.wait, '--wait');
  const count = opts.count === undefined ? Infinity : parseInteger(opts.count, '--count', 1, Number.MAX_SAFE_INTEGER);
  const ack = !opts['no-ack'];
  if (opts.after !== undefined && ack) throw new UsageError('--after needs --no-ack (to move a committed cursor use `pollgate consumers seek`)');
  const limit = opts.limit === undefined ? undefined : parseInteger(opts.limit, '--limit', 1, 1000);

  const client = createClient(conn);
  const signals = stopSignals();
  // A closed pipe (`tail | head -1`) is an ordinary way to stop.
  let pipeClosed = false;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') pipeClosed = true;
  });
  const iterate: IterateOptions = {
    wait,
    ack,
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
        if (ack) await client.ack(event.cursor);
        break;
      }
    }
  } catch (error) {
    if (pipeClosed || (error as NodeJS.ErrnoException).code === 'EPIPE') return;
    throw error;
  } finally {
    signals.dispose();
  }
}

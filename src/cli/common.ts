/**
 * What every `pollgate` command shares: where the gateway is and which key to use (flag, then
 * environment variable), the exit-code contract (0 ok, 1 runtime error, 2 usage error),
 * position syntax, JSON output, and stopping on SIGINT/SIGTERM.
 */
import type { Command } from 'commander';
import { DEFAULT_URL, UsageError, write, type Env } from '../client/cli/args.ts';
import type { Position } from '../client/types.ts';
import { parseDuration } from '../config.ts';

// Shared with the client package's commands (tail, forward): one usage error, one way to write.
export { DEFAULT_URL, logLine, parseInteger, parseSeconds, stopSignals, UsageError, write, type Env } from '../client/cli/args.ts';

/** A runtime failure with a message a person can act on: exit 1, printed without a stack trace. */
export class CommandFailed extends Error {
  override name = 'CommandFailed';
}

export interface Connection {
  url: string;
  key: string;
}

export function addConnectionOptions(cmd: Command, keyKind: 'admin' | 'consumer'): Command {
  const envName = keyKind === 'admin' ? 'POLLGATE_ADMIN_KEY' : 'POLLGATE_KEY';
  return cmd
    .option('--url <url>', `the gateway (default: $POLLGATE_URL, else ${DEFAULT_URL})`)
    .option('--key <key>', `the ${keyKind === 'admin' ? 'admin key' : 'consumer key (pgk_…)'} (default: $${envName})`);
}

export function connection(opts: { url?: string; key?: string }, env: Env, keyKind: 'admin' | 'consumer'): Connection {
  const envName = keyKind === 'admin' ? 'POLLGATE_ADMIN_KEY' : 'POLLGATE_KEY';
  const url = opts.url ?? (env.POLLGATE_URL || DEFAULT_URL);
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new UsageError(`--url: "${url}" is not an http:// or https:// URL`);
  }
  const key = opts.key ?? env[envName];
  if (!key) {
    const where =
      keyKind === 'admin'
        ? ' (the server printed it when it first started and keeps it in its data directory: data/admin.key by default, e.g. POLLGATE_ADMIN_KEY=$(cat data/admin.key))'
        : ' (shown once when the consumer was created or its key rotated)';
    throw new UsageError(`no ${keyKind === 'admin' ? 'admin key' : 'consumer key'}: pass --key or set ${envName}${where}`);
  }
  return { url, key };
}

export const POSITION_HELP = 'earliest | latest | cursor:<cursor> | time:<ISO 8601>';

/** "earliest", "latest", "cursor:C", "time:ISO" → the API's position. */
export function parsePosition(text: string, flag: string): Position {
  if (text === 'earliest' || text === 'latest') return text;
  if (text.startsWith('cursor:') && text.length > 'cursor:'.length) return { cursor: text.slice('cursor:'.length) };
  if (text.startsWith('time:')) {
    const time = text.slice('time:'.length);
    if (Number.isNaN(Date.parse(time))) throw new UsageError(`${flag}: "${time}" is not an ISO 8601 time`);
    return { time };
  }
  throw new UsageError(`${flag}: "${text}" must be ${POSITION_HELP}`);
}

export function parseJsonFlag(text: string, flag: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${flag}: not valid JSON (${(error as Error).message})`);
  }
}

export function parseDurationFlag(text: string, flag: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}

export function printJson(value: unknown): Promise<void> {
  return write(process.stdout, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * The `pollgate` command tree (commander). runCli() parses, runs one command and answers its
 * exit code: 0 ok, 1 runtime error (the server said no, the network failed), 2 usage error
 * (commander's own errors and what the commands reject before calling anyone). `serve` is the
 * exception that never "finishes": it answers null and the server process lives on until its
 * signal handlers end it (src/serve.ts).
 */
import { Command, CommanderError } from 'commander';
import { CursorExpiredError, NetworkError, PollgateError } from '../client/index.ts';
import { configHelp } from '../config.ts';
import { VERSION } from '../version.ts';
import { CommandFailed, UsageError, type Env } from './common.ts';
import { addBackupCommands } from './backup.ts';
import { addConsumerCommands } from './consumers.ts';
import { addForwardCommand } from './forward.ts';
import { addMigrateCommand } from './migrate.ts';
import { addTailCommand } from './tail.ts';
import { addWebhookCommands } from './webhooks.ts';

const serveUsage = (options: string) => `Usage: pollgate serve [options]\n\nRun the pollgate server.\n\n${options}`;

export function buildProgram(env: Env, state: { serving: boolean }): Command {
  const program = new Command('pollgate')
    .description('pollgate: a pull-first event gateway — server, admin commands, tail and forward agents')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)');

  const serveCmd = program
    .command('serve')
    .description('run the server (options: pollgate serve --help)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]', 'server options, passed through')
    .action(async (args: string[]) => {
      // Loaded only here: the server (SQLite, Hono, pino) would slow down every other command.
      const { serve, SERVE_HELP } = await import('../serve.ts');
      if (args.includes('--help') || args.includes('-h')) {
        process.stdout.write(serveUsage(SERVE_HELP));
        return;
      }
      state.serving = true;
      await serve(args, env);
    });
  // `pollgate help serve`: the same text as SERVE_HELP, without loading the server.
  serveCmd.helpInformation = () => serveUsage(`Options (flag, environment variable, meaning):\n${configHelp()}\n`);

  addConsumerCommands(program, env);
  addWebhookCommands(program, env);
  addTailCommand(program, env);
  addForwardCommand(program, env);
  addMigrateCommand(program, env);
  addBackupCommands(program, env);
  return program;
}

export async function runCli(argv: string[], env: Env): Promise<number | null> {
  const state = { serving: false };
  const program = buildProgram(env, state);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return state.serving ? null : 0;
  } catch (error) {
    return report(error);
  }
}

function report(error: unknown): number {
  if (error instanceof CommanderError) {
    // commander printed its message (or the help) already.
    return error.exitCode === 0 ? 0 : 2;
  }
  if (error instanceof UsageError) {
    process.stderr.write(`pollgate: error: ${error.message}\n(add --help for usage)\n`);
    return 2;
  }
  if (error instanceof CursorExpiredError) {
    process.stderr.write(
      `pollgate: ${error.message}\n` +
        `  retention removed events this consumer had not read; the oldest retained one lies after ${error.earliest}.\n` +
        `  Nothing was skipped. To go on: pollgate consumers seek <id> --to earliest (or cursor:${error.earliest})\n`,
    );
    return 1;
  }
  if (error instanceof PollgateError) {
    process.stderr.write(`pollgate: ${error.status} ${error.code}: ${error.message}\n`);
    return 1;
  }
  if (error instanceof CommandFailed) {
    process.stderr.write(`pollgate: ${error.message}\n`);
    return 1;
  }
  if (error instanceof NetworkError) {
    process.stderr.write(`pollgate: could not reach the gateway: ${error.message}\n`);
    return 1;
  }
  process.stderr.write(`pollgate: ${(error as Error)?.stack ?? String(error)}\n`);
  return 1;
}

/**
 * The client package's commands (`tail`, `forward`) under `pollgate`: commander hands their
 * arguments over untouched (they parse their own, with node:util parseArgs), and their usage
 * errors become this command's (exit 2); the SDK's errors are reported by program.ts as for
 * every other command.
 */
import type { Command } from 'commander';
import { UsageError as ClientUsageError } from '../client/cli/args.ts';
import { UsageError } from './common.ts';

export function passThrough(
  program: Command,
  command: string,
  summary: string,
  help: (name: string) => string,
  run: (argv: string[], name: string) => Promise<void>,
): void {
  const name = `pollgate ${command}`;
  const cmd = program
    .command(command)
    .description(summary)
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]', 'options, see --help')
    .action(async (argv: string[]) => {
      try {
        await run(argv, name);
      } catch (error) {
        throw error instanceof ClientUsageError ? new UsageError(error.message) : error;
      }
    });
  // `pollgate help tail`: the command's own help.
  cmd.helpInformation = () => help(name);
}

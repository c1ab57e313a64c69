/**
 * The client package's commands (`tail`, `forward`) under `pollgate`: commander hands their
 * arguments over untouched (they parse their own, with node:util parseArgs); their usage errors
 * are the same class as this command's (exit 2), and the SDK's errors are reported by
 * program.ts as for every other command.
 */
import type { Command } from 'commander';

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
    // Their UsageError is this command's own (cli/common.ts re-exports it): exit 2.
    .action((argv: string[]) => run(argv, name));
  // `pollgate help tail`: the command's own help.
  cmd.helpInformation = () => help(name);
}

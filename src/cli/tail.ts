/**
 * `pollgate tail`: the client package's `tail` (src/client/cli/tail.ts), the same code
 * customers run as `pollgate-client tail`, under the `pollgate` command.
 */
import type { Command } from 'commander';
import { runTail, tailHelp, TAIL_SUMMARY } from '../client/cli/tail.ts';
import { passThrough } from './client-commands.ts';
import type { Env } from './common.ts';

export function addTailCommand(program: Command, env: Env): void {
  passThrough(program, 'tail', TAIL_SUMMARY, tailHelp, (argv, name) => runTail(argv, { name, env }));
}

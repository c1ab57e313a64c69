/**
 * `pollgate forward`: the client package's `forward` (src/client/cli/forward.ts), the same code
 * customers run as `pollgate-client forward`, under the `pollgate` command.
 */
import type { Command } from 'commander';
import { forwardHelp, FORWARD_SUMMARY, runForward } from '../client/cli/forward.ts';
import { passThrough } from './client-commands.ts';
import type { Env } from './common.ts';

export function addForwardCommand(program: Command, env: Env): void {
  passThrough(program, 'forward', FORWARD_SUMMARY, forwardHelp, (argv, name) => runForward(argv, { name, env }));
}

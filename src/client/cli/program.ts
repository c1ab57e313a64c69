/**
 * The `pollgate-client` command: `tail` and `forward`, and what their failures mean for the exit
 * code: 0 ok, 1 runtime error (the server said no, the network failed), 2 usage error.
 */
import { CursorExpiredError, NetworkError, PollgateError } from '../errors.ts';
import { CLIENT_VERSION } from '../version.ts';
import { UsageError, write, type Env } from './args.ts';
import { FORWARD_SUMMARY, runForward } from './forward.ts';
import { runTail, TAIL_SUMMARY } from './tail.ts';

const NAME = 'pollgate-client';

const HELP =
  `Usage: ${NAME} <command> [options]\n\n` +
  'The customer side of pollgate: read a consumer\'s events, or deliver them to a local URL.\n\n' +
  'Commands:\n' +
  `  tail      ${TAIL_SUMMARY}\n` +
  `  forward   ${FORWARD_SUMMARY}\n\n` +
  `Options:\n  -V, --version  the version\n  -h, --help     this help (${NAME} <command> --help for a command's)\n`;

export async function runClientCli(argv: string[], env: Env): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'tail') await runTail(rest, { name: `${NAME} tail`, env });
    else if (command === 'forward') await runForward(rest, { name: `${NAME} forward`, env });
    else if (command === '--version' || command === '-V') await write(process.stdout, `${CLIENT_VERSION}\n`);
    else if (command === undefined || command === '--help' || command === '-h' || command === 'help') await write(process.stdout, HELP);
    else throw new UsageError(`unknown command '${command}' (commands: tail, forward)`);
    return 0;
  } catch (error) {
    return report(error);
  }
}

function report(error: unknown): number {
  const say = (text: string) => process.stderr.write(`${NAME}: ${text}\n`);
  if (error instanceof UsageError) {
    say(`error: ${error.message}\n(add --help for usage)`);
    return 2;
  }
  if (error instanceof CursorExpiredError) {
    say(
      `${error.message}\n` +
        `  retention removed events this consumer had not read; the oldest retained one lies after ${error.earliest}.\n` +
        '  Nothing was skipped. To go on, an operator moves the consumer (pollgate consumers seek <id> --to earliest).',
    );
    return 1;
  }
  if (error instanceof PollgateError) {
    say(`${error.status} ${error.code}: ${error.message}`);
    return 1;
  }
  if (error instanceof NetworkError) {
    say(`could not reach the gateway: ${error.message}`);
    return 1;
  }
  say((error as Error)?.stack ?? String(error));
  return 1;
}

/**
 * Entry point of the `pollgate` command (bin/pollgate.js runs its compiled form). The only
 * place of the CLI that reads process.env and ends the process.
 */
import { runCli } from './program.ts';

const code = await runCli(process.argv.slice(2), process.env);
if (code !== null) {
  // Exit now rather than when idle keep-alive sockets happen to close; stdout and stderr are
  // synchronous for files and pipes on POSIX, and every command awaited its own writes.
  process.exit(code);
}

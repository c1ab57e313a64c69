#!/usr/bin/env node
/** Entry point of the `pollgate-client` command (program.ts); the only place that ends the process. */
import { runClientCli } from './program.ts';

// No top-level await: the same file is compiled to CommonJS too.
void runClientCli(process.argv.slice(2), process.env).then((code) => {
  // Exit now rather than when idle keep-alive sockets happen to close.
  process.exit(code);
});

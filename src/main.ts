/** Entry point of `npm start`: runs the server (see serve.ts). */
import { serve, SERVE_HELP } from './serve.ts';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(`pollgate: a pull-first event gateway\n\nUsage: npm start -- [options]\n\n${SERVE_HELP}`);
  process.exit(0);
}
await serve(argv, process.env);

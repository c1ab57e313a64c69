/**
 * Entry point: configuration from POLLGATE_* variables and flags, start, and SIGTERM/SIGINT
 * handling (graceful stop, exit 0).
 */
import { ConfigError, configHelp, loadConfig } from './config.ts';
import { createPollgate } from './pollgate.ts';

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(`pollgate: a pull-first event gateway\n\nUsage: npm start -- [options]\n\nOptions (flag, environment variable):\n${configHelp()}\n`);
  process.exit(0);
}

let config;
try {
  config = loadConfig(process.env, argv);
} catch (error) {
  if (error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`pollgate: ${(error as Error).message}\n`);
    process.exit(2);
  }
  throw error;
}

const gateway = createPollgate(config, {
  onAdminKeyGenerated(key, file) {
    // Printed once, here only: later starts read it from the file and never print it.
    process.stdout.write(`\npollgate: generated an admin key (stored in ${file}, mode 0600; shown only now):\n\n    ${key}\n\n`);
  },
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  gateway.services.logger.info({ signal }, 'stopping');
  try {
    await gateway.stop();
    process.exit(0);
  } catch (error) {
    gateway.services.logger.error({ err: error }, 'stop failed');
    process.exit(1);
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

gateway.start().catch((error: Error) => {
  process.stderr.write(`pollgate: could not listen on ${config.host}:${config.port}: ${error.message}\n`);
  process.exit(1);
});

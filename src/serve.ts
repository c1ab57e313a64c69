/**
 * Running the server as a process: configuration from POLLGATE_* variables and flags, start,
 * and SIGTERM/SIGINT handling (graceful stop, exit 0). Used by `npm start` (src/main.ts) and
 * by `pollgate serve`.
 *
 * A stop is bounded: if it has not finished within POLLGATE_SHUTDOWN_TIMEOUT (a database that
 * no longer answers, say), the process says so and exits 1 rather than lingering with the
 * database open and its work half stopped.
 */
import { ConfigError, configHelp, loadConfig, type Config } from './config.ts';
import { createPollgate } from './pollgate.ts';

export const SERVE_HELP = `Options (flag, environment variable, meaning):\n${configHelp()}\n`;

/** Which database, without a password. */
function where(config: Config): string {
  if (!config.databaseUrl) return `in ${config.dataDir}`;
  const u = new URL(config.databaseUrl);
  return `at ${u.hostname}:${u.port || 5432}${u.pathname}`;
}

/** The error and what caused it (the driver's own words: ECONNREFUSED, a missing database…). */
function describe(error: unknown): string {
  const e = error as Error & { code?: string; path?: string; cause?: { message?: string; code?: string } };
  // The data directory is a file, or lies inside one: say so in words, and what to do.
  if ((e.code === 'ENOTDIR' || e.code === 'EEXIST') && e.path) {
    return `${e.path} is a file (or inside one), not a directory; point POLLGATE_DATA_DIR (--data-dir) at a directory`;
  }
  if (e.code === 'EACCES' && e.path) return `no permission to use ${e.path}; run as its owner or choose another POLLGATE_DATA_DIR (--data-dir)`;
  const cause = e.cause?.message || e.cause?.code;
  return cause && cause !== e.message ? `${e.message} (${cause})` : e.message;
}

export async function serve(argv: string[], env: Record<string, string | undefined>): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env, argv);
  } catch (error) {
    if (error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`pollgate: ${(error as Error).message}\n`);
      process.exit(2);
    }
    throw error;
  }

  let gateway: Awaited<ReturnType<typeof createPollgate>>;
  try {
    gateway = await createPollgate(config, {
      onAdminKeyGenerated(key, where) {
        // Printed once, here only: later starts read it back and never print it.
        process.stdout.write(`\npollgate: generated an admin key (stored in ${where}; shown only now):\n\n    ${key}\n\n`);
      },
    });
  } catch (error) {
    process.stderr.write(`pollgate: could not open the database ${where(config)}: ${describe(error)}\n`);
    process.exit(1);
  }

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    gateway.services.logger.info({ signal }, 'stopping');
    setTimeout(() => {
      gateway.services.logger.fatal(
        { signal, timeoutMs: config.shutdownTimeoutMs, setting: 'POLLGATE_SHUTDOWN_TIMEOUT' },
        'stop did not finish in time; exiting with status 1',
      );
      process.exit(1);
    }, config.shutdownTimeoutMs);
    try {
      await gateway.stop();
      process.exit(0);
    } catch (error) {
      gateway.services.logger.error({ err: error }, 'stop failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    await gateway.start();
  } catch (error) {
    process.stderr.write(`pollgate: could not listen on ${config.host}:${config.port}: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

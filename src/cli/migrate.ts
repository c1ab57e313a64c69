/**
 * `pollgate migrate --to postgres://…`: moves an embedded deployment to PostgreSQL (see
 * store/move-to-postgres.ts). Run it with the server stopped; then start the nodes with
 * POLLGATE_DATABASE_URL. Prints what it copied; exit 1 when the target is not empty or the
 * data directory is in use, 2 for bad arguments.
 */
import type { Command } from 'commander';
import { CommandFailed, UsageError, type Env } from './common.ts';

export function addMigrateCommand(program: Command, env: Env): void {
  program
    .command('migrate')
    .description('copy an embedded (SQLite) deployment into an empty PostgreSQL database')
    .requiredOption('--to <url>', 'the PostgreSQL database (postgres://…); it must hold no pollgate data yet')
    .option('--data-dir <dir>', 'the embedded deployment (default: $POLLGATE_DATA_DIR, else ./data)')
    .action(async (opts: { to: string; dataDir?: string }) => {
      if (!/^postgres(ql)?:\/\//.test(opts.to)) throw new UsageError('--to: must be a postgres://… URL');
      const dataDir = opts.dataDir ?? (env.POLLGATE_DATA_DIR || './data');
      // Loaded only here: both database drivers.
      const [{ moveToPostgres }, { default: pino }] = await Promise.all([import('../store/move-to-postgres.ts'), import('pino')]);
      const target = redacted(opts.to);
      process.stderr.write(`pollgate: copying ${dataDir} into ${target} …\n`);
      let counts;
      try {
        counts = await moveToPostgres(dataDir, opts.to, {
          logger: pino({ level: 'silent' }),
          onProgress: (table, n) => {
            if (n % 100_000 === 0) process.stderr.write(`  ${table}: ${n}\n`);
          },
        });
      } catch (error) {
        // Nothing was written to the target (one transaction): say why, without a stack trace.
        throw new CommandFailed(`migrate: ${(error as Error).message || String(error)}; the target was left unchanged`);
      }
      process.stdout.write(
        `copied into ${target}:\n` +
          `  events      ${counts.events}\n` +
          `  tenants     ${counts.tenants} (heads and trim marks)\n` +
          `  consumers   ${counts.consumers} (keys and cursors)\n` +
          `  webhooks    ${counts.webhooks} (secrets and retry state)\n` +
          `  deliveries  ${counts.deliveries} (attempt log)\n` +
          `  settings    ${counts.settings}${counts.adminKey ? ' + the admin key (as a hash)' : ''}\n` +
          `Start the nodes with POLLGATE_DATABASE_URL set to this database; keep ${dataDir} until they serve.\n`,
      );
    });
}

/** The URL without its password, for output. */
function redacted(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

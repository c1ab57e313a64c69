/**
 * `pollgate backup --to FILE` and `pollgate restore --from FILE --data-dir DIR`: an embedded
 * deployment in one file and back (store/sqlite/backup.ts). The backup runs while the server
 * serves; the restore goes into a new data directory, keeping the admin key. On PostgreSQL,
 * backups are the database's own business (pg_dump, base backups), and the commands say so.
 */
import type { Command } from 'commander';
import { CommandFailed, type Env } from './common.ts';

function embeddedOnly(env: Env, command: string): void {
  if (env.POLLGATE_DATABASE_URL) {
    throw new CommandFailed(
      `${command} is for the embedded (SQLite) engine; POLLGATE_DATABASE_URL is set, so back up PostgreSQL with its own tools (pg_dump, or base backups with WAL archiving)`,
    );
  }
}

function describe(s: { bytes: number; events: number; tenants: number; consumers: number; webhooks: number; adminKey: boolean }): string {
  return (
    `  events     ${s.events} (${s.tenants} tenants)\n` +
    `  consumers  ${s.consumers} (keys and cursors)\n` +
    `  webhooks   ${s.webhooks} (secrets and retry state)\n` +
    `  admin key  ${s.adminKey ? 'included' : 'not included (it is configured with POLLGATE_ADMIN_KEY, not generated)'}\n` +
    `  size       ${(s.bytes / 1048576).toFixed(1)} MiB\n`
  );
}

async function failing<T>(what: string, work: () => Promise<T> | T): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw new CommandFailed(`${what}: ${(error as Error).message || String(error)}`);
  }
}

export function addBackupCommands(program: Command, env: Env): void {
  program
    .command('backup')
    .description('copy the embedded database, online, into one file (it holds secrets: kept 0600)')
    .requiredOption('--to <file>', 'the backup file to create (never overwritten)')
    .option('--data-dir <dir>', 'the data directory (default: $POLLGATE_DATA_DIR, else ./data)')
    .action(async (opts: { to: string; dataDir?: string }) => {
      embeddedOnly(env, 'backup');
      const dataDir = opts.dataDir ?? (env.POLLGATE_DATA_DIR || './data');
      const { backupDataDir } = await import('../store/sqlite/backup.ts'); // the native driver, only here
      const s = await failing('backup', () => backupDataDir(dataDir, opts.to));
      process.stdout.write(`backed up ${dataDir} into ${opts.to}:\n${describe(s)}Restore with: pollgate restore --from ${opts.to} --data-dir <new dir>\n`);
    });

  program
    .command('restore')
    .description('put a backup file in place as a new data directory (with its admin key)')
    .requiredOption('--from <file>', 'a file made by pollgate backup')
    .requiredOption('--data-dir <dir>', 'the data directory to create: no database or admin key in it yet')
    .action(async (opts: { from: string; dataDir: string }) => {
      embeddedOnly(env, 'restore');
      const { restoreDataDir } = await import('../store/sqlite/backup.ts');
      const s = await failing('restore', () => restoreDataDir(opts.from, opts.dataDir));
      process.stdout.write(
        `restored ${opts.from} into ${opts.dataDir}:\n${describe(s)}` +
          `Start the server with --data-dir ${opts.dataDir}; consumers go on with their keys from their committed cursors.\n`,
      );
    });
}

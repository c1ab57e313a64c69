/**
 * `npm test`'s second half: the whole suite again on PostgreSQL (POLLGATE_TEST_ENGINE=postgres).
 * Without a reachable server it says so, and how to enable it, and exits 0: the SQLite suite
 * already ran. CI makes sure the server is up (.ci/run), so there it always runs.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { POSTGRES_UNAVAILABLE, postgresAvailable } from './postgres.ts';

if (!(await postgresAvailable())) {
  process.stdout.write(
    `\nPostgreSQL suite SKIPPED: ${POSTGRES_UNAVAILABLE}.\n` +
      'Start one (e.g. pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) and run npm test again.\n',
  );
  process.exit(process.env.CI ? 1 : 0);
}
const files = readdirSync('test').filter((f) => f.endsWith('.test.ts')).map((f) => `test/${f}`);
process.stdout.write('\nThe suite on PostgreSQL (POLLGATE_TEST_ENGINE=postgres)\n');
const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files], {
  stdio: 'inherit',
  env: { ...process.env, POLLGATE_TEST_ENGINE: 'postgres' },
});
process.exit(run.status ?? 1);

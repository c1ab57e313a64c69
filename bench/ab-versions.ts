/**
 * ab-versions: this checkout's pollgate against another checkout's (BENCH_AB_BASE, a directory
 * with src/ and node_modules/, e.g. `git archive <commit> | tar -x -C dir` plus a node_modules
 * link), under the publish and batch loads in alternating runs (lib/ab.ts), on SQLite or, with
 * BENCH_AB_ENGINE=postgres, each on a fresh PostgreSQL database. Ratio: this ÷ base.
 * BENCH_AB_NEW=<dir> puts a third checkout in this one's place (e.g. a commit without the
 * uncommitted work of others that shares this working tree).
 */
import { abPublish } from './lib/ab.ts';
import { createDatabase, postgresUnavailable, type BenchDatabase } from './lib/postgres.ts';
import type { Scenario } from './lib/scenario.ts';
import { startPollgate } from './lib/servers.ts';

export const scenario: Scenario = {
  name: 'ab-versions',
  title: 'A/B: this checkout against BENCH_AB_BASE under the publish loads (BENCH_AB_ENGINE=postgres for PostgreSQL)',
  async run(ctx) {
    const base = process.env.BENCH_AB_BASE;
    const other = process.env.BENCH_AB_NEW;
    if (!base) throw new Error('set BENCH_AB_BASE to the other checkout');
    const postgres = process.env.BENCH_AB_ENGINE === 'postgres';
    if (postgres) {
      const why = postgresUnavailable();
      if (why) throw new Error(why);
    }
    const databases: BenchDatabase[] = [];
    const env = () => {
      if (!postgres) return {};
      const db = createDatabase('pollgate_ab');
      databases.push(db);
      return { POLLGATE_DATABASE_URL: db.url };
    };
    try {
      const { rows, budgets } = await abPublish(
        ctx,
        `${postgres ? 'PostgreSQL' : 'SQLite'} A/B`,
        { name: 'base', start: (p) => startPollgate({ ...p, root: base, env: env() }) },
        { name: other ? 'new' : 'this checkout', start: (p) => startPollgate({ ...p, ...(other ? { root: other } : {}), env: env() }) },
      );
      rows[0]?.notes.push(`base: ${base}${other ? `; new: ${other}` : ''}`);
      return { rows, details: { budgets } };
    } finally {
      for (const db of databases) db.drop();
    }
  },
};

/**
 * Kysely as a typed query builder over better-sqlite3's synchronous API.
 *
 * Queries are built with Kysely (typed against tables.ts) and compiled, never executed by
 * Kysely: better-sqlite3 runs them synchronously, which is what lets them join the
 * writer's group transaction (an async driver could not run inside a savepoint there).
 * Compiled statements are prepared once per SQL text and cached.
 */
import {
  DummyDriver,
  Kysely,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type Compilable,
} from 'kysely';
import type { Statement } from 'better-sqlite3';
import type { Db } from './db.ts';
import type { Database } from './tables.ts';

export const qb = new Kysely<Database>({
  dialect: {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  },
});

const cache = new WeakMap<Db, Map<string, Statement>>();

/**
 * A statement from hand-written SQL, prepared once per database. For the few statements run
 * per delivered event or per ack, where building and compiling a Kysely query each time
 * costs more than running it.
 */
export function statement(db: Db, sql: string): Statement {
  return prepare(db, sql);
}

function prepare(db: Db, sql: string): Statement {
  let byText = cache.get(db);
  if (!byText) cache.set(db, (byText = new Map()));
  let st = byText.get(sql);
  if (!st) byText.set(sql, (st = db.prepare(sql)));
  return st;
}

type Row<Q> = Q extends Compilable<infer R> ? R : never;

export function all<Q extends Compilable<any>>(db: Db, query: Q): Row<Q>[] {
  const c = query.compile();
  return prepare(db, c.sql).all(...(c.parameters as unknown[])) as Row<Q>[];
}

export function first<Q extends Compilable<any>>(db: Db, query: Q): Row<Q> | undefined {
  const c = query.compile();
  return prepare(db, c.sql).get(...(c.parameters as unknown[])) as Row<Q> | undefined;
}

/** Runs a statement that returns no rows; answers the number of rows changed. */
export function run(db: Db, query: Compilable<any>): number {
  const c = query.compile();
  return prepare(db, c.sql).run(...(c.parameters as unknown[])).changes;
}

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
import type { Database } from '../tables.ts';

export const qb = new Kysely<Database>({
  dialect: {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  },
});

const cache = new WeakMap<Db, Map<string, Statement>>();

function prepare(db: Db, sql: string): Statement {
  let byText = cache.get(db);
  if (!byText) cache.set(db, (byText = new Map()));
  let st = byText.get(sql);
  if (!st) byText.set(sql, (st = db.prepare(sql)));
  return st;
}

type Row<Q> = Q extends Compilable<infer R> ? R : never;

/**
 * A fixed-shape query for hot paths: built and compiled by Kysely once, from placeholder
 * arguments, then run with fresh ones (building and compiling costs more than running).
 * `build` must use each argument as a plain value and not branch on it.
 */
export function reusable<A extends unknown[], Q extends Compilable<any>>(build: (...args: A) => Q) {
  let compiled: { sql: string; slots: Array<number | { value: unknown }> } | null = null;
  const bind = (db: Db, args: A): [Statement, unknown[]] => {
    if (!compiled) {
      const marks = args.map((_, i) => `\u0000arg${i}\u0000`);
      const c = build(...(marks as unknown as A)).compile();
      compiled = {
        sql: c.sql,
        slots: c.parameters.map((p) => {
          const i = marks.indexOf(p as string);
          return i >= 0 ? i : { value: p };
        }),
      };
    }
    const params = compiled.slots.map((slot) => (typeof slot === 'number' ? args[slot] : slot.value));
    return [prepare(db, compiled.sql), params];
  };
  return {
    first(db: Db, ...args: A): Row<Q> | undefined {
      const [st, params] = bind(db, args);
      return st.get(...params) as Row<Q> | undefined;
    },
    all(db: Db, ...args: A): Row<Q>[] {
      const [st, params] = bind(db, args);
      return st.all(...params) as Row<Q>[];
    },
    run(db: Db, ...args: A): number {
      const [st, params] = bind(db, args);
      return st.run(...params).changes;
    },
  };
}

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

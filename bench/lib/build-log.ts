/**
 * Builds a big pollgate database for the cold-start bench, as its own process:
 *
 *   node --import tsx bench/lib/build-log.ts <dataDir> <events> <tenants>
 *
 * The database is opened through the project's own openDatabase() (src/store/sqlite/db.ts), so the
 * schema is exactly what the migrations in schema/ make. Then, for speed only: no journal,
 * no fsync, a 1 GiB page cache; the events table's indexes are dropped, the rows inserted in
 * transactions of 500,000, and the indexes created again from their own stored SQL (one sort
 * instead of 10M random B-tree inserts; the result is the same schema). The journal mode is
 * set back to WAL at the end.
 *
 * Rows look like production: gateway-assigned ids evt_<16 nanoid chars>; tenants
 * tenant-00000… with a skewed distribution (a few big tenants, a long tail: index =
 * floor(tenants × u³)); 8 event types; ~100-byte JSON data; commit times non-decreasing along
 * seq, spread over the 6 days before the build. Prints one JSON line with what it built.
 */
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nanoid } from 'nanoid';
import { openDatabase } from '../../src/store/sqlite/db.ts';

const [dir, eventsArg, tenantsArg] = process.argv.slice(2);
if (!dir || !eventsArg || !tenantsArg) {
  process.stderr.write('usage: build-log.ts <dataDir> <events> <tenants>\n');
  process.exit(2);
}
const total = Number(eventsArg);
const tenants = Number(tenantsArg);
const TX = 500_000;
const TYPES = ['ticket.created', 'ticket.updated', 'ticket.closed', 'message.created', 'invoice.paid', 'invoice.failed', 'user.signed_up', 'user.deleted'];

const t0 = performance.now();
const db = openDatabase(dir);
db.pragma('journal_mode = OFF');
db.pragma('synchronous = OFF');
db.pragma('cache_size = -1048576');
db.pragma('temp_store = MEMORY');

const indexes = db
  .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' AND sql IS NOT NULL")
  .all() as Array<{ name: string; sql: string }>;
for (const ix of indexes) db.exec(`DROP INDEX "${ix.name}"`);

const insert = db.prepare('INSERT INTO events (pos, id, tenant, type, time, data) VALUES (?, ?, ?, ?, ?, ?)');
const saveTenant = db.prepare(
  `INSERT INTO tenants (tenant, head_pos, last_time, trimmed_pos, legacy_trimmed_seq) VALUES (?, ?, ?, 0, 0)
   ON CONFLICT (tenant) DO UPDATE SET head_pos = excluded.head_pos, last_time = excluded.last_time`,
);
const heads = new Map<string, { pos: number; time: number }>();
const tenantNames = Array.from({ length: tenants }, (_, i) => `tenant-${String(i).padStart(5, '0')}`);
const end = Date.now();
const span = 6 * 86_400_000;
const start = end - span;
let seed = 12345;
const rand = () => {
  // xorshift32: reproducible and fast
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
};

for (let from = 0; from < total; from += TX) {
  db.transaction(() => {
    for (let i = from; i < Math.min(total, from + TX); i++) {
      const u = rand();
      const tenant = tenantNames[Math.floor(tenants * u * u * u)]!;
      const type = TYPES[i % TYPES.length]!;
      const time = start + Math.floor((i / total) * span);
      const data = `{"ticketId":"tk_${(0x100000 + i).toString(16)}","priority":"${i % 3 === 0 ? 'urgent' : 'normal'}","seats":${i % 50},"actor":"usr_${Math.floor(rand() * 1e9).toString(36)}"}`;
      const pos = (heads.get(tenant)?.pos ?? 0) + 1;
      heads.set(tenant, { pos, time });
      insert.run(pos, `evt_${nanoid(16)}`, tenant, type, time, data);
    }
  })();
  process.stderr.write(`build-log: ${Math.min(total, from + TX)} / ${total} rows, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
}
db.transaction(() => {
  for (const [tenant, h] of heads) saveTenant.run(tenant, h.pos, h.time);
})();
const tIndex = performance.now();
for (const ix of indexes) db.exec(ix.sql);
process.stderr.write(`build-log: indexes rebuilt in ${((performance.now() - tIndex) / 1000).toFixed(0)} s\n`);
const head = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'events'").pluck().get() as number;
db.pragma('journal_mode = WAL');
const file = db.name;
db.close();
const meta = {
  events: total,
  head,
  tenants,
  bytes: statSync(file).size,
  buildSeconds: Math.round((performance.now() - t0) / 100) / 10,
  builtAt: new Date().toISOString(),
};
writeFileSync(join(dir, 'bench-meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
process.stdout.write(`${JSON.stringify(meta)}\n`);

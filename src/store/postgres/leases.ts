/**
 * One owner per push consumer (SCALE-OUT §4): lease rows claimed and renewed with the
 * database's clock, spread over the live nodes.
 *
 * 1. Only the database's clock (now()) decides liveness and expiry: nodes' clocks may disagree.
 *    A node's own bridge stops pushing before its lease ends by its own monotonic clock, with a
 *    margin; that is the caller's part.
 * 2. A claim bumps the lease's epoch. Lease rows live as long as their consumer (freeing a lease
 *    clears its owner and keeps the row), so the epoch never goes back and an old owner's
 *    progress write, which carries its old epoch, is refused forever (webhooks.ts, fencing).
 * 3. Fair share = ceil(enabled webhooks / live nodes), live = heartbeat within the ttl. A node
 *    holding more than its share frees the extras, so a node that joins gets work; a dead
 *    node's leases expire and are claimed by the others.
 * 4. Claims skip rows another node is claiming at the same moment (SKIP LOCKED) instead of
 *    waiting on them; one claim round is one short transaction.
 */
import { sql } from 'kysely';
import type { Lease } from '../store.ts';
import type { Db } from './db.ts';

export function claimLeases(db: Db, nodeId: string, ttlMs: number, lockTimeoutMs: number): Promise<Lease[]> {
  const ttl = sql`make_interval(secs => ${ttlMs / 1000}::float8)`;
  return db.transaction().execute(async (trx) => {
    // Heartbeat (and forget nodes dead for a long while).
    // Heartbeat, and forget nodes dead for a long while (data-modifying CTEs always run).
    await sql`WITH beat AS (
        INSERT INTO nodes (node_id, seen_at) VALUES (${nodeId}, now())
        ON CONFLICT (node_id) DO UPDATE SET seen_at = now()
      ), gone AS (
        DELETE FROM nodes WHERE seen_at < now() - 10 * ${ttl} AND node_id <> ${nodeId}
      )
      SELECT set_config('lock_timeout', ${`${lockTimeoutMs}ms`}, true)`.execute(trx);

    // Mine whose webhook left push mode: free them. Every enabled webhook has a lease row.
    await sql`UPDATE push_leases AS l SET owner = NULL, expires_at = '-infinity'
      WHERE l.owner = ${nodeId}
        AND NOT EXISTS (SELECT 1 FROM webhooks AS w WHERE w.consumer_id = l.consumer_id AND w.enabled = 1)`.execute(trx);
    await sql`INSERT INTO push_leases (consumer_id)
      SELECT consumer_id FROM webhooks WHERE enabled = 1
      ON CONFLICT (consumer_id) DO NOTHING`.execute(trx);

    // Renew mine.
    await sql`UPDATE push_leases SET expires_at = now() + ${ttl} WHERE owner = ${nodeId}`.execute(trx);

    const { rows } = await sql<{ enabled: number; live: number; held: number }>`SELECT
        (SELECT count(*) FROM webhooks WHERE enabled = 1) AS enabled,
        (SELECT count(*) FROM nodes WHERE seen_at > now() - ${ttl}) AS live,
        (SELECT count(*) FROM push_leases WHERE owner = ${nodeId}) AS held`.execute(trx);
    const { enabled, live, held } = rows[0]!;
    const share = Math.ceil(enabled / Math.max(1, live));

    if (held < share) {
      await sql`UPDATE push_leases SET owner = ${nodeId}, epoch = epoch + 1, expires_at = now() + ${ttl}
        WHERE consumer_id IN (
          SELECT l.consumer_id FROM push_leases AS l
          JOIN webhooks AS w ON w.consumer_id = l.consumer_id AND w.enabled = 1
          WHERE l.owner IS NULL OR l.expires_at < now()
          ORDER BY l.consumer_id
          LIMIT ${share - held}::integer
          FOR UPDATE OF l SKIP LOCKED
        )`.execute(trx);
    } else if (held > share) {
      await sql`UPDATE push_leases SET owner = NULL, expires_at = '-infinity'
        WHERE consumer_id IN (
          SELECT consumer_id FROM push_leases WHERE owner = ${nodeId}
          ORDER BY consumer_id DESC LIMIT ${held - share}::integer
        )`.execute(trx);
    }

    const mine = await trx
      .selectFrom('push_leases')
      .select(['consumer_id', 'epoch'])
      .where('owner', '=', nodeId)
      .orderBy('consumer_id')
      .execute();
    return mine.map((r) => ({ consumerId: r.consumer_id, epoch: r.epoch }));
  });
}

/**
 * Revokes the lease whoever holds it (a stop of this node, or a change to the consumer on any
 * node): the holder is fenced out at once and the next claim, which draws a new epoch, starts
 * from the rows as they are now.
 */
export async function revokeLease(db: Db, consumerId: string): Promise<void> {
  await db
    .updateTable('push_leases')
    .set({ owner: null, expires_at: sql<Date>`'-infinity'` })
    .where('consumer_id', '=', consumerId)
    .execute();
}

/**
 * Which consumers have a poll held now, on any node (the ops view's `polling`).
 *
 * 1. Marks are written behind the poll, never on its path: queued, coalesced per consumer (the
 *    newest mark wins) and written in one statement per flush, one flush in flight at a time,
 *    so a burst of 1,000 wake-ups costs one UPDATE, not 1,000; a poll that ends before its mark
 *    was written costs none.
 * 2. Each mark applies only while its poll is the consumer's newest (same poll_generation): a
 *    late "no longer held" never clears a newer poll's mark.
 * 3. Best effort: a lost write leaves a mark that expires with the poll's deadline. This node's
 *    own queued marks are laid over what the database says, so a view read right after a poll
 *    ends here does not show it held.
 */
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { PollActivity, PollStart } from '../store.ts';
import type { Db } from './db.ts';

interface Mark {
  generation: number;
  until: number | null;
}

export interface HeldPolls {
  mark(start: PollStart, heldUntil: number | null): void;
  activity(consumerId: string): Promise<PollActivity>;
  /** Writes what is queued (at close). */
  flush(): Promise<void>;
}

export function createHeldPolls(db: Db, logger: Logger): HeldPolls {
  let queued = new Map<string, Mark>();
  let writing = new Map<string, Mark>();
  let flushing: Promise<void> | undefined;
  let scheduled = false;

  async function write(batch: Map<string, Mark>): Promise<void> {
    const ids = [...batch.keys()];
    const generations = ids.map((id) => batch.get(id)!.generation);
    const untils = ids.map((id) => batch.get(id)!.until);
    await sql`
      WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))
      UPDATE consumers c SET poll_held_until = m.until
      FROM relaxed, unnest(${ids}::text[], ${generations}::bigint[], ${untils}::bigint[]) AS m(id, generation, until)
      WHERE c.id = m.id AND c.poll_generation = m.generation`.execute(db);
  }

  function flush(): Promise<void> {
    scheduled = false;
    if (flushing) return flushing.then(() => (queued.size > 0 ? flush() : undefined));
    if (queued.size === 0) return Promise.resolve();
    writing = queued;
    queued = new Map();
    flushing = write(writing)
      .catch((error: unknown) => logger.debug({ err: error }, 'held-poll marks not written; they expire with their polls'))
      .finally(() => {
        writing = new Map();
        flushing = undefined;
        if (queued.size > 0) schedule();
      });
    return flushing;
  }

  function schedule(): void {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => void flush());
  }

  return {
    mark({ consumerId, generation }, until) {
      const prior = queued.get(consumerId);
      if (prior && prior.generation > generation) return;
      // A poll answered before its mark was written leaves nothing to write: its row was
      // cleared when the poll began (beginPoll), so a wake-up burst costs no writes for it.
      const unwritten = prior?.generation === generation && prior.until !== null && writing.get(consumerId)?.generation !== generation;
      if (until === null && unwritten) {
        queued.delete(consumerId);
        return;
      }
      queued.set(consumerId, { generation, until });
      schedule();
    },
    async activity(consumerId) {
      const row = await db
        .selectFrom('consumers')
        .select(['last_poll_at', 'poll_held_until', 'poll_generation'])
        .where('id', '=', consumerId)
        .executeTakeFirst();
      if (!row) return { lastPollAt: null, heldUntil: null };
      const local = queued.get(consumerId) ?? writing.get(consumerId);
      const heldUntil = local && local.generation === row.poll_generation ? local.until : row.poll_held_until;
      return { lastPollAt: row.last_poll_at, heldUntil };
    },
    flush,
  };
}

/**
 * The long-poll hub (src/hub/hub.ts) in process, for what the HTTP tests cannot provoke: an
 * answer() callback that throws (the wake-up loop must go on with the other polls, and the
 * failed poll must still get its events), and the cases of several nodes made exact: records
 * that do not follow a waiter's position, a commit between a poll's read and its registration,
 * hints and generations from other nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHub } from '../src/hub/hub.ts';
import { compileFilter } from '../src/filter/filter.ts';
import type { Scanned } from '../src/hub/hub.ts';
import type { EventRecord, Page } from '../src/store/store.ts';
import { FakeClock } from './support/fake-clock.ts';

const record = (pos: number, tenant: string): EventRecord => ({ pos, id: `e${pos}`, tenant, type: 't.x', time: 0, data: '{}' });
const nothing = async (): Promise<Scanned> => ({ events: [], cursor: 0, more: false });
const noPages = async (reads: unknown[]): Promise<Page[]> => reads.map(() => ({ records: [], head: 0, trimmedThrough: 0 }));

/** A hub over an in-memory log: the reads answer from `log` and record the positions asked. */
function hubOverLog(log: EventRecord[]) {
  const reads: number[] = [];
  const page = (tenant: string, position: number, limit: number): Page => ({
    records: log.filter((r) => r.tenant === tenant && r.pos > position).slice(0, limit),
    head: log.filter((r) => r.tenant === tenant).at(-1)?.pos ?? 0,
    trimmedThrough: 0,
  });
  const hub = createHub({
    clock: new FakeClock(),
    read: async (tenant, position, limit) => {
      reads.push(position);
      const p = page(tenant, position, limit.events);
      return { events: p.records, cursor: p.records.at(-1)?.pos ?? Math.max(position, p.head), more: false };
    },
    readMany: async (asked) =>
      asked.map((r) => {
        reads.push(r.afterPos);
        return page(r.tenant, r.afterPos, r.limit);
      }),
  });
  return { hub, reads };
}
const matcher = compileFilter(null);
/** A page bound of n events and room for all their bytes. */
const bound = (events: number) => ({ events, bytes: 4 << 20 });

test('an answer() that throws leaves its poll to answer the usual way; the other polls are answered in the same wake-up', async () => {
  const hub = createHub({ clock: new FakeClock(), read: nothing, readMany: noPages });
  const sent: string[] = [];
  const wait = (consumerId: string, answer: () => void) =>
    hub.wait({ ticket: hub.begin(consumerId, 1), tenant: 'acme', matcher, position: 0, limit: bound(10), waitMs: 60_000, onGone: undefined, answer });

  const failing = wait('c1', () => {
    throw new Error('socket went away mid-write');
  });
  const working = wait('c2', () => sent.push('c2'));
  const plain = hub.wait({ ticket: hub.begin('c3', 1), tenant: 'acme', matcher, position: 0, limit: bound(10), waitMs: 60_000, onGone: undefined });

  hub.publish([record(1, 'acme')]);
  assert.deepEqual(sent, ['c2'], 'answered inside the wake-up, despite the throw before it');

  const [a, b, c] = await Promise.all([failing, working, plain]);
  assert.equal(a.kind, 'events');
  assert.equal(a.kind === 'events' && a.answered, undefined, 'not sent: the route must answer');
  assert.deepEqual(a.kind === 'events' && a.events.map((e) => e.pos), [1]);
  assert.equal(b.kind === 'events' && b.answered, true);
  assert.equal(c.kind === 'events' && c.answered, undefined, 'no answer() given: nothing was sent');
  assert.equal(hub.stats().held, 0);
});

test('records that do not follow the waiter\'s position make it re-read the log (a commit of another node lies between)', async () => {
  const log = [record(1, 'acme'), record(2, 'acme'), record(3, 'acme')];
  const { hub, reads } = hubOverLog(log);
  const held = hub.wait({ ticket: hub.begin('c1', 1), tenant: 'acme', matcher, position: 1, limit: bound(10), waitMs: 60_000, onGone: undefined });
  hub.publish([record(3, 'acme')]); // 2 came from another node and was never seen here
  const outcome = await held;
  assert.equal(outcome.kind, 'events');
  assert.deepEqual(outcome.kind === 'events' && outcome.events.map((e) => e.pos), [2, 3], 'position 2 is not skipped');
  assert.deepEqual(reads, [1]);
});

test('a commit between the poll\'s read and its registration is not missed', async () => {
  const log = [record(1, 'acme')];
  const { hub, reads } = hubOverLog(log);
  hub.publish([record(1, 'acme')]); // committed after the poll read position 0, before it waits
  const outcome = await hub.wait({ ticket: hub.begin('c1', 1), tenant: 'acme', matcher, position: 0, limit: bound(10), waitMs: 60_000, onGone: undefined });
  assert.deepEqual(outcome.kind === 'events' && outcome.events.map((e) => e.pos), [1]);
  assert.deepEqual(reads, [0]);
});

test('a hint from another node wakes the polls behind it; one at or past it reads nothing', async () => {
  const log = [record(1, 'acme'), record(2, 'acme')];
  const { hub, reads } = hubOverLog(log);
  const behind = hub.wait({ ticket: hub.begin('c1', 1), tenant: 'acme', matcher, position: 1, limit: bound(10), waitMs: 60_000, onGone: undefined });
  const level = hub.wait({ ticket: hub.begin('c2', 1), tenant: 'acme', matcher, position: 2, limit: bound(10), waitMs: 60_000, onGone: undefined });
  hub.hint('acme', 2);
  const outcome = await behind;
  assert.deepEqual(outcome.kind === 'events' && outcome.events.map((e) => e.pos), [2]);
  assert.deepEqual(reads, [1], 'only the poll behind the hint read the log');
  assert.equal(hub.isHeld('c2'), true);
  hub.shutdown();
  assert.deepEqual(await level, { kind: 'shutdown', cursor: 2 });
});

test('generations decide supersede across nodes: a newer one ends the held poll, an older one is refused', async () => {
  const hub = createHub({ clock: new FakeClock(), read: nothing, readMany: noPages });
  const held = hub.wait({ ticket: hub.begin('c1', 5), tenant: 'acme', matcher, position: 0, limit: bound(10), waitMs: 60_000, onGone: undefined });
  hub.supersede('c1', 4); // an older poll start, announced late
  assert.equal(hub.isHeld('c1'), true, 'an older generation does not end the held poll');
  hub.supersede('c1', 6); // a newer poll started on another node
  assert.deepEqual(await held, { kind: 'superseded' });
  const late = await hub.wait({ ticket: hub.begin('c1', 6 - 1), tenant: 'acme', matcher, position: 0, limit: bound(10), waitMs: 60_000, onGone: undefined });
  assert.deepEqual(late, { kind: 'superseded' }, 'a poll older than the newest known start cannot wait');
});

test('re-reads asked in one turn go to the store as one batch: hints for 100 tenants, one readMany', async () => {
  const log = Array.from({ length: 100 }, (_, i) => record(1, `t${i}`));
  let calls = 0;
  let asked = 0;
  const hub = createHub({
    clock: new FakeClock(),
    read: nothing,
    readMany: async (reads) => {
      calls += 1;
      asked += reads.length;
      return reads.map((r) => ({ records: log.filter((e) => e.tenant === r.tenant && e.pos > r.afterPos), head: 1, trimmedThrough: 0 }));
    },
  });
  const held = log.map((e, i) =>
    hub.wait({ ticket: hub.begin(`c${i}`, 1), tenant: e.tenant, matcher, position: 0, limit: bound(10), waitMs: 60_000, onGone: undefined }),
  );
  for (const e of log) hub.hint(e.tenant, 1); // another node committed position 1 of each tenant
  const outcomes = await Promise.all(held);
  assert.ok(outcomes.every((o) => o.kind === 'events' && o.events.length === 1));
  assert.equal(calls, 1, 'one store call for the whole turn');
  assert.equal(asked, 100);
});

test("a tenant's waiters, one or many: each is woken, each ends once, and the tenant is forgotten when its last one ends", async () => {
  const hub = createHub({ clock: new FakeClock(), read: nothing, readMany: noPages });
  const gone = new Map<string, () => void>();
  const wait = (id: string, tenant: string, position = 0) =>
    hub.wait({
      ticket: hub.begin(id, 1),
      tenant,
      matcher,
      position,
      limit: bound(10),
      waitMs: 60_000,
      onGone: (abort) => {
        gone.set(id, abort);
        return () => gone.delete(id);
      },
    });
  const [a, b, c] = [wait('a', 'many'), wait('b', 'many'), wait('c', 'many')];
  const alone = wait('d', 'one');
  assert.deepEqual(hub.tenantsWaitedOn().sort(), ['many', 'one']);
  gone.get('b')!(); // b's client leaves: the other two stay
  assert.equal((await b).kind, 'aborted');
  gone.get('a')!(); // down to one waiter on the tenant
  assert.equal((await a).kind, 'aborted');
  hub.publish([record(1, 'many'), record(1, 'one')]);
  const woken = [await c, await alone].map((o) => (o.kind === 'events' ? o.events.map((e) => e.tenant + e.pos) : o.kind));
  assert.deepEqual(woken, [['many1'], ['one1']]);
  assert.deepEqual(hub.tenantsWaitedOn(), []);
  assert.equal(hub.stats().held, 0);
  assert.equal(gone.size, 0, 'every ended poll unsubscribed from its client');
  // A new waiter on a tenant that had several is woken on its own.
  const again = wait('e', 'many', 1);
  hub.publish([record(2, 'many')]);
  const outcome = await again;
  assert.ok(outcome.kind === 'events' && outcome.events[0]!.pos === 2);
});

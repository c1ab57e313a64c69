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
import type { EventRecord } from '../src/store/store.ts';
import { FakeClock } from './support/fake-clock.ts';

const record = (pos: number, tenant: string): EventRecord => ({ pos, id: `e${pos}`, tenant, type: 't.x', time: 0, data: '{}' });
const nothing = async (): Promise<Scanned> => ({ events: [], cursor: 0, more: false });

/** A hub over a fake log: read() answers from `log` and counts the reads. */
function hubOverLog(log: EventRecord[]) {
  const reads: number[] = [];
  const hub = createHub({
    clock: new FakeClock(),
    read: async (tenant, position, limit) => {
      reads.push(position);
      const events = log.filter((r) => r.tenant === tenant && r.pos > position).slice(0, limit);
      const last = log.filter((r) => r.tenant === tenant).at(-1)?.pos ?? 0;
      return { events, cursor: events.at(-1)?.pos ?? Math.max(position, last), more: false };
    },
  });
  return { hub, reads };
}
const matcher = compileFilter(null);

test('an answer() that throws leaves its poll to answer the usual way; the other polls are answered in the same wake-up', async () => {
  const hub = createHub({ clock: new FakeClock(), read: nothing });
  const sent: string[] = [];
  const wait = (consumerId: string, answer: () => void) =>
    hub.wait({ ticket: hub.begin(consumerId, 1), tenant: 'acme', matcher, position: 0, limit: 10, waitMs: 60_000, onGone: undefined, answer });

  const failing = wait('c1', () => {
    throw new Error('socket went away mid-write');
  });
  const working = wait('c2', () => sent.push('c2'));
  const plain = hub.wait({ ticket: hub.begin('c3', 1), tenant: 'acme', matcher, position: 0, limit: 10, waitMs: 60_000, onGone: undefined });

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
  const held = hub.wait({ ticket: hub.begin('c1', 1), tenant: 'acme', matcher, position: 1, limit: 10, waitMs: 60_000, onGone: undefined });
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
  const outcome = await hub.wait({ ticket: hub.begin('c1', 1), tenant: 'acme', matcher, position: 0, limit: 10, waitMs: 60_000, onGone: undefined });
  assert.deepEqual(outcome.kind === 'events' && outcome.events.map((e) => e.pos), [1]);
  assert.deepEqual(reads, [0]);
});

test('a hint from another node wakes the polls behind it; one at or past it reads nothing', async () => {
  const log = [record(1, 'acme'), record(2, 'acme')];
  const { hub, reads } = hubOverLog(log);
  const behind = hub.wait({ ticket: hub.begin('c1', 1), tenant: 'acme', matcher, position: 1, limit: 10, waitMs: 60_000, onGone: undefined });
  const level = hub.wait({ ticket: hub.begin('c2', 1), tenant: 'acme', matcher, position: 2, limit: 10, waitMs: 60_000, onGone: undefined });
  hub.hint('acme', 2);
  const outcome = await behind;
  assert.deepEqual(outcome.kind === 'events' && outcome.events.map((e) => e.pos), [2]);
  assert.deepEqual(reads, [1], 'only the poll behind the hint read the log');
  assert.equal(hub.isHeld('c2'), true);
  hub.shutdown();
  assert.deepEqual(await level, { kind: 'shutdown', cursor: 2 });
});

test('generations decide supersede across nodes: a newer one ends the held poll, an older one is refused', async () => {
  const hub = createHub({ clock: new FakeClock(), read: nothing });
  const held = hub.wait({ ticket: hub.begin('c1', 5), tenant: 'acme', matcher, position: 0, limit: 10, waitMs: 60_000, onGone: undefined });
  hub.supersede('c1', 4); // an older poll start, announced late
  assert.equal(hub.isHeld('c1'), true, 'an older generation does not end the held poll');
  hub.supersede('c1', 6); // a newer poll started on another node
  assert.deepEqual(await held, { kind: 'superseded' });
  const late = await hub.wait({ ticket: hub.begin('c1', 6 - 1), tenant: 'acme', matcher, position: 0, limit: 10, waitMs: 60_000, onGone: undefined });
  assert.deepEqual(late, { kind: 'superseded' }, 'a poll older than the newest known start cannot wait');
});

/**
 * The long-poll hub (src/hub/hub.ts) in process, for what the HTTP tests cannot provoke: an
 * answer() callback that throws. The wake-up loop must go on with the other polls, and the
 * failed poll must still get its events (answered:false, so its route answers them itself).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHub } from '../src/hub/hub.ts';
import { compileFilter } from '../src/filter/filter.ts';
import type { EventRecord } from '../src/store/events.ts';
import { FakeClock } from './support/fake-clock.ts';

const record = (seq: number, tenant: string): EventRecord => ({ seq, id: `e${seq}`, tenant, type: 't.x', time: 0, data: '{}' });

test('an answer() that throws leaves its poll to answer the usual way; the other polls are answered in the same wake-up', async () => {
  const hub = createHub({ clock: new FakeClock(), head: () => 0 });
  const matcher = compileFilter(null);
  const sent: string[] = [];
  const wait = (consumerId: string, answer: () => void) =>
    hub.wait({ ticket: hub.begin(consumerId), tenant: 'acme', matcher, position: 0, limit: 10, waitMs: 60_000, onGone: undefined, answer });

  const failing = wait('c1', () => {
    throw new Error('socket went away mid-write');
  });
  const working = wait('c2', () => sent.push('c2'));
  const plain = hub.wait({ ticket: hub.begin('c3'), tenant: 'acme', matcher, position: 0, limit: 10, waitMs: 60_000, onGone: undefined });

  hub.publish([record(1, 'acme')]);
  assert.deepEqual(sent, ['c2'], 'answered inside the wake-up, despite the throw before it');

  const [a, b, c] = await Promise.all([failing, working, plain]);
  assert.equal(a.kind, 'events');
  assert.equal(a.kind === 'events' && a.answered, undefined, 'not sent: the route must answer');
  assert.deepEqual(a.kind === 'events' && a.events.map((e) => e.seq), [1]);
  assert.equal(b.kind === 'events' && b.answered, true);
  assert.equal(c.kind === 'events' && c.answered, undefined, 'no answer() given: nothing was sent');
  assert.equal(hub.stats().held, 0);
});

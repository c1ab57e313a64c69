/**
 * HTTP contract tests for retention as the poll path sees it (SPEC: Retention; Polling:
 * 410 cursor_expired; PITFALLS: trim marks, cursors never reused). Real gateways on loopback
 * ports over real SQLite files, driven by a FakeClock: retention runs on clock timers (a tick
 * at start, then one every 30 s of clock time after the previous run finished), so the tests
 * advance the clock in small steps until the expected events are gone.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, tempDir, type TestGateway } from './support/gateway.ts';
import { FakeClock } from './support/fake-clock.ts';
import { sleep, within } from './support/wait.ts';
import { rmSync } from 'node:fs';

const ZERO = 't0000000000000000';
const RETENTION_MS = 60_000;

let tenantSeq = 0;
const freshTenant = (label = 't') => `ret-${label}-${++tenantSeq}`;

async function poll(g: TestGateway, key: string, query: string) {
  return g.json(`/v1/events?${query}`, { key });
}

async function adminView(g: TestGateway, id: string): Promise<any> {
  const r = await g.json(`/v1/consumers/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function me(g: TestGateway, key: string): Promise<any> {
  const r = await g.json('/v1/consumer', { key });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/**
 * Advances the clock in steps (letting each retention run commit in between) until cond
 * holds; fails if it does not within maxMs of clock time.
 */
async function driveRetention(
  clock: FakeClock,
  cond: () => Promise<boolean>,
  what: string,
  opts: { stepMs?: number; maxMs: number },
): Promise<void> {
  const step = opts.stepMs ?? 5_000;
  for (let advanced = 0; ; advanced += step) {
    await sleep(15);
    if (await cond()) return;
    if (advanced >= opts.maxMs) throw new Error(`retention never got to: ${what} (advanced ${advanced} ms)`);
    await clock.advance(step);
  }
}

function assertExpired(r: { status: number; body: any; headers: Headers }): string {
  assert.equal(r.status, 410, `expected 410, got ${r.status}: ${JSON.stringify(r.body)}`);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(r.body?.error?.code, 'cursor_expired', JSON.stringify(r.body));
  assert.equal(typeof r.body.error.message, 'string');
  assert.ok(r.body.error.message.length > 0);
  assert.equal(typeof r.body.error.earliest, 'string', `error.earliest: ${JSON.stringify(r.body)}`);
  assert.ok(r.body.error.earliest.length > 0);
  return r.body.error.earliest;
}

function assertIds(r: { status: number; body: any }, ids: string[], more = false): void {
  assert.equal(r.status, 200, `expected 200, got ${r.status}: ${JSON.stringify(r.body)}`);
  assert.deepEqual(r.body.events.map((e: any) => e.id), ids, JSON.stringify(r.body));
  assert.equal(r.body.more, more);
}

describe('retention and 410 cursor_expired', () => {
  const clock = new FakeClock();
  let g: TestGateway;

  // One timeline for the whole describe (t0 = the clock's start):
  //   t0      A1 A2 A3 published (tenant A); `done` acks A3, `partial` acks A1
  //   t0+55s  A4 (tenant A) and B1 (tenant B) published
  //   then    retention removes A1..A3 (older than 60 s) and keeps A4, B1
  const A = freshTenant('A');
  const B = freshTenant('B');
  const ev: Record<string, any> = {};
  const con: Record<string, { id: string; key: string; cursor: string }> = {};

  before(async () => {
    g = await startGateway({ clock, config: { retentionMs: RETENTION_MS } });
    for (const name of ['behind', 'done', 'partial', 'replayer', 'seeker', 'acker', 'heldDone']) {
      con[name] = await g.createConsumer({ tenant: A, name, start: 'earliest' });
    }
    con.other = await g.createConsumer({ tenant: B, name: 'other', start: 'earliest' });

    const first = await g.publish([
      { tenant: A, type: 'a', data: 1, id: 'A1' },
      { tenant: A, type: 'a', data: 2, id: 'A2' },
      { tenant: A, type: 'a', data: 3, id: 'A3' },
    ]);
    [ev.A1, ev.A2, ev.A3] = first.events;
    for (const name of ['done', 'heldDone']) {
      const r = await g.json('/v1/ack', { key: con[name]!.key, body: { cursor: ev.A3.cursor } });
      assert.equal(r.status, 200);
    }
    assert.equal((await g.json('/v1/ack', { key: con.partial!.key, body: { cursor: ev.A1.cursor } })).status, 200);

    await clock.advance(55_000);
    const second = await g.publish([
      { tenant: A, type: 'a', data: 4, id: 'A4' },
      { tenant: B, type: 'b', data: 1, id: 'B1' },
    ]);
    [ev.A4, ev.B1] = second.events;

    // Before the trim nobody is expired.
    assertIds(await poll(g, con.behind!.key, 'wait=0'), ['A1', 'A2', 'A3', 'A4']);

    // Until only A4 is left of tenant A (lag of a consumer at the very start counts A's events).
    await driveRetention(
      clock,
      async () => (await adminView(g, con.behind!.id)).lag === 1,
      'A1..A3 removed',
      { maxMs: 55_000 },
    );
  });

  after(async () => {
    await g?.close();
  });

  test('a consumer behind removed events gets 410 cursor_expired with error.earliest (at once, even with a long wait)', async () => {
    const r = await within(poll(g, con.behind!.key, 'wait=60'), 2000, 'expired poll');
    const earliest = assertExpired(r);
    assert.ok(earliest >= ev.A3.cursor && earliest < ev.A4.cursor, `earliest ${earliest} lies between A3 and A4`);
  });

  test('the 410 does not move the committed cursor, and repeats until the client seeks', async () => {
    assertExpired(await poll(g, con.behind!.key, 'wait=0'));
    assertExpired(await poll(g, con.behind!.key, 'wait=0'));
    assert.equal((await me(g, con.behind!.key)).cursor, ZERO);
  });

  test('a consumer that lost only some events (acked A1, A2..A3 removed) also gets 410', async () => {
    assertExpired(await poll(g, con.partial!.key, 'wait=0'));
    assert.equal((await me(g, con.partial!.key)).cursor, ev.A1.cursor);
  });

  test('reading with after=<earliest> returns the oldest retained event, and moves nothing', async () => {
    const earliest = assertExpired(await poll(g, con.replayer!.key, 'wait=0'));
    const r = await poll(g, con.replayer!.key, `wait=0&after=${earliest}`);
    assertIds(r, ['A4']);
    assert.deepEqual(r.body.events[0], ev.A4);
    assert.equal((await me(g, con.replayer!.key)).cursor, ZERO);
  });

  test('ack=<earliest> in the poll commits it and then reads the oldest retained event', async () => {
    const earliest = assertExpired(await poll(g, con.acker!.key, 'wait=0'));
    assertIds(await poll(g, con.acker!.key, `wait=0&ack=${earliest}`), ['A4']);
    assert.equal((await me(g, con.acker!.key)).cursor, earliest);
    assertIds(await poll(g, con.acker!.key, 'wait=0'), ['A4']);
  });

  test('seek to earliest recovers: the next poll returns the oldest retained event', async () => {
    assertExpired(await poll(g, con.seeker!.key, 'wait=0'));
    const s = await g.json(`/v1/consumers/${con.seeker!.id}/seek`, { body: { to: 'earliest' } });
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assertIds(await poll(g, con.seeker!.key, 'wait=0'), ['A4']);
  });

  test('a consumer that had acked everything before the trim is not affected (200)', async () => {
    const r = await poll(g, con.done!.key, 'wait=0');
    assertIds(r, ['A4']);
    assert.equal((await me(g, con.done!.key)).cursor, ev.A3.cursor);
  });

  test('the unaffected consumer can still hold a poll and be woken', async () => {
    const r0 = await g.json('/v1/ack', { key: con.heldDone!.key, body: { cursor: ev.A4.cursor } });
    assert.equal(r0.status, 200);
    const held = poll(g, con.heldDone!.key, 'wait=60');
    for (let i = 0; i < 200 && !(await adminView(g, con.heldDone!.id)).polling; i++) await sleep(5);
    const a5 = await g.publish({ tenant: A, type: 'a', data: 5, id: 'A5' });
    assertIds(await within(held, 2000, 'held poll'), ['A5']);
    assert.equal(a5.id, 'A5');
  });

  test('consumers of other tenants are unaffected', async () => {
    assertIds(await poll(g, con.other!.key, 'wait=0'), ['B1']);
  });

  test('after= behind the trim mark is 410 even for a consumer whose own cursor is fine', async () => {
    const r = await poll(g, con.done!.key, `wait=0&after=${ZERO}`);
    assertExpired(r);
    assert.equal((await me(g, con.done!.key)).cursor, ev.A3.cursor);
  });

  test('a consumer created with start "earliest" after the trim starts at the oldest retained event', async () => {
    const c = await g.createConsumer({ tenant: A, start: 'earliest' });
    assertIds(await poll(g, c.key, 'wait=0&limit=1'), ['A4'], true);
  });

  test('a consumer created at {cursor: 0} after the trim gets 410 (nothing skipped silently)', async () => {
    const c = await g.createConsumer({ tenant: A, start: { cursor: ZERO } });
    assertExpired(await poll(g, c.key, 'wait=0'));
  });
});

describe('retention: cursors are never reused', () => {
  test('after everything is trimmed (and across a restart), new events get cursors past all previous ones', async () => {
    const dataDir = tempDir();
    const T = freshTenant('reuse');
    const seen: string[] = [];
    let behindId = '';
    let behindKey = '';
    let doneKey = '';
    try {
      {
        const clock = new FakeClock();
        const g = await startGateway({ clock, dataDir, config: { retentionMs: RETENTION_MS } });
        try {
          const behind = await g.createConsumer({ tenant: T, name: 'behind', start: 'earliest' });
          const done = await g.createConsumer({ tenant: T, name: 'done', start: 'earliest' });
          [behindId, behindKey, doneKey] = [behind.id, behind.key, done.key];
          const r = await g.publish(Array.from({ length: 5 }, (_, i) => ({ tenant: T, type: 'x', data: i })));
          seen.push(...r.events.map((e: any) => e.cursor));
          assert.equal((await g.json('/v1/ack', { key: doneKey, body: { cursor: seen[4] } })).status, 200);

          await driveRetention(clock, async () => (await adminView(g, behindId)).lag === 0, 'everything removed', {
            maxMs: 200_000,
          });

          const fresh = await g.publish({ tenant: T, type: 'x', data: 'after-trim' });
          for (const c of seen) assert.ok(fresh.cursor > c, `new cursor ${fresh.cursor} is past ${c}`);
          assert.ok(!seen.includes(fresh.cursor));
          seen.push(fresh.cursor);

          assertIds(await poll(g, doneKey, 'wait=0'), [fresh.id]);
          assertExpired(await poll(g, behindKey, 'wait=0'));
          // `done` reads everything again before the next trim.
          assert.equal((await g.json('/v1/ack', { key: doneKey, body: { cursor: fresh.cursor } })).status, 200);

          // Trim the new one too, then restart on the same data directory.
          await driveRetention(clock, async () => (await adminView(g, behindId)).lag === 0, 'the new event removed', {
            maxMs: 200_000,
          });
        } finally {
          await g.close();
        }
      }
      {
        const clock = new FakeClock(Date.parse('2026-11-22T11:00:00.000Z'));
        const g = await startGateway({ clock, dataDir, config: { retentionMs: RETENTION_MS } });
        try {
          const r = await g.publish({ tenant: T, type: 'x', data: 'after-restart' });
          for (const c of seen) assert.ok(r.cursor > c, `cursor after restart ${r.cursor} is past ${c}`);
          // The trim mark survived the restart: the consumer behind is still expired.
          assertExpired(await poll(g, behindKey, 'wait=0'));
          // The one that had acked everything before the trim is not.
          assertIds(await poll(g, doneKey, 'wait=0'), [r.id]);
        } finally {
          await g.close();
        }
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

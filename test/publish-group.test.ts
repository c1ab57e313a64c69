/**
 * Appends that commit together (one group transaction on SQLite, where single events run
 * without a savepoint and the tenants' heads are written once per group): a job that fails
 * inside the group gives back the positions it drew, so the events around it stay dense, the
 * head is right, and it is still right after a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseLost, type NewEvent } from '../src/store/store.ts';
import { startGateway, tempDir } from './support/gateway.ts';

const event = (id: string, tenant = 'grp'): NewEvent => ({ tenant, type: 'group.test', id, data: JSON.stringify({ id }) });

test('a batch that fails between single events of the same group leaves them dense; the head survives a restart', async (t) => {
  const dataDir = tempDir();
  const g = await startGateway({ dataDir });
  let closed = false;
  t.after(async () => {
    if (!closed) await g.close();
  });
  const store = g.gateway.services.store;
  const now = Date.now();
  // Started in one turn: on SQLite these are one group transaction.
  const outcomes = await Promise.allSettled([
    store.append([event('one')], now),
    store.append([event('other-1', 'grp-other')], now),
    // A fenced append whose webhook does not exist: refused after its events were inserted (SQLite).
    store.append([event('two'), event('three'), event('other-2', 'grp-other')], now, { progress: { consumerId: 'con_missing', epoch: 1 } }),
    store.append([event('four')], now),
    store.append([event('five'), event('six')], now),
  ]);
  assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  assert.ok((outcomes[2] as PromiseRejectedResult).reason instanceof LeaseLost, String((outcomes[2] as PromiseRejectedResult).reason));
  const positions = (i: number) => (outcomes[i] as PromiseFulfilledResult<Array<{ record: { pos: number } }>>).value.map((a) => a.record.pos);
  assert.deepEqual([positions(0), positions(3), positions(4)], [[1], [2], [3, 4]], 'the failed batch gave its positions back');
  assert.deepEqual(positions(1), [1]);

  const read = async () => ({
    grp: (await store.read('grp', 0, 100)).records.map((r) => [r.pos, r.id]),
    other: (await store.read('grp-other', 0, 100)).records.map((r) => [r.pos, r.id]),
    heads: [await store.head('grp'), await store.head('grp-other')],
  });
  const expected = {
    grp: [[1, 'one'], [2, 'four'], [3, 'five'], [4, 'six']],
    other: [[1, 'other-1']],
    heads: [4, 1],
  };
  assert.deepEqual(await read(), expected);

  // The next group continues from the committed heads.
  const [next] = await store.append([event('seven')], Date.now());
  assert.equal(next!.record.pos, 5);
  expected.grp.push([5, 'seven']);
  expected.heads[0] = 5;

  await g.close();
  closed = true;
  const again = await startGateway({ dataDir });
  t.after(() => again.close());
  const s2 = again.gateway.services.store;
  assert.deepEqual(
    {
      grp: (await s2.read('grp', 0, 100)).records.map((r) => [r.pos, r.id]),
      other: (await s2.read('grp-other', 0, 100)).records.map((r) => [r.pos, r.id]),
      heads: [await s2.head('grp'), await s2.head('grp-other')],
    },
    expected,
    'after a restart',
  );
  await again.publish({ tenant: 'grp', type: 'group.test', data: null });
  assert.equal((await s2.read('grp', 5, 10)).records[0]?.pos, 6, 'a publish after the restart takes the next position');
});

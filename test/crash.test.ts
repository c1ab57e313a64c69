/**
 * Durability under SIGKILL (SPEC: Publishing — "answered only after the events are durably
 * committed", "a batch commits all or nothing", idempotent ids; PITFALLS: group commit).
 *
 * The real server runs as a child process. Concurrent publisher loops publish identifiable
 * events (single events and small arrays, ids `c<cycle>-p<loop>-<n>[.k]`, each event's data
 * holding its id) while the server is SIGKILLed mid-load. After a restart on the same data
 * directory the whole log is read back and checked against what was acknowledged. The cycle
 * repeats on the same directory; every check is cumulative over all cycles.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import {
  compareCursors,
  killAllServers,
  readAll,
  removeDir,
  request,
  startServer,
  tempDir,
  TEST_ADMIN_KEY,
  type ServerProcess,
} from './support/process.ts';
import { appendedTotal } from './support/appended.ts';
import { sleep, withTimeout } from './support/wait.ts';

const TENANT = 'crash';
const LOOPS = 24;
const CYCLES = 3;
/** How long each cycle publishes before the kill (varied a little per cycle). */
const LOAD_MS = [1000, 1200, 800];

interface Attempt {
  ids: string[];
  array: boolean;
  /** The request body as sent (to republish it unchanged). */
  events: Array<{ tenant: string; type: string; id: string; data: unknown }>;
  /** Set when the publish was answered 2xx: the returned envelopes, in request order. */
  envelopes?: any[];
}

const short = (xs: unknown[], n = 10) => `${xs.length}: ${JSON.stringify(xs.slice(0, n))}${xs.length > n ? ' …' : ''}`;

describe('durability under SIGKILL (process level)', () => {
  const dataDir = tempDir('pollgate-crash-');
  let server: ServerProcess | undefined;

  /** Every publish attempt of every cycle. */
  const attempts: Attempt[] = [];
  /** id -> envelope the gateway acknowledged (publish 2xx or an idempotent republish). */
  const acked = new Map<string, any>();
  /** id -> envelope as read back after the previous restart (the log is immutable). */
  let previousLog = new Map<string, any>();

  after(async () => {
    await killAllServers();
    removeDir(dataDir);
  });

  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    test(`cycle ${cycle}: SIGKILL under concurrent publishing loses no acknowledged event and splits no batch`, { timeout: 60_000 }, async (t) => {
      const tStart = Date.now();
      server ??= await startServer({ dataDir });
      const victim = server;

      // ---- load ------------------------------------------------------------------------
      const tLoad = Date.now();
      const agent = new http.Agent({ keepAlive: true, maxSockets: LOOPS });
      let stop = false;
      let inFlight = 0;
      let ackedThisCycle = 0;
      const unexpected: string[] = [];
      let connectionErrors = 0;

      const loop = async (p: number) => {
        for (let n = 1; !stop; n++) {
          const base = `c${cycle}-p${p}-${n}`;
          const array = (p + n) % 3 === 0;
          const size = array ? 2 + ((p * 7 + n) % 4) : 1;
          const ids = array ? Array.from({ length: size }, (_, k) => `${base}.${k}`) : [base];
          const events = ids.map((id, k) => ({
            tenant: TENANT,
            type: array ? 'crash.batch' : 'crash.single',
            id,
            data: { id, cycle, loop: p, n, k, pad: 'x'.repeat((n * 13) % 200) },
          }));
          const attempt: Attempt = { ids, array, events };
          attempts.push(attempt);
          inFlight++;
          let r;
          try {
            r = await request(victim.url, '/v1/events', { body: array ? events : events[0], agent, timeoutMs: 10_000 });
          } catch {
            // The kill: the connection was reset or refused. This loop is done.
            connectionErrors++;
            return;
          } finally {
            inFlight--;
          }
          if (r.status !== 201) {
            unexpected.push(`${base}: ${r.status} ${r.text.slice(0, 200)}`);
            return;
          }
          const envelopes = array ? r.body?.events : [r.body];
          assert.ok(Array.isArray(envelopes) && envelopes.length === ids.length, `${base}: answer ${r.text.slice(0, 200)}`);
          envelopes.forEach((e: any, k: number) => {
            assert.equal(e.id, ids[k], 'envelopes come in request order');
            assert.deepEqual(e.data, events[k]!.data);
            acked.set(e.id, e);
          });
          attempt.envelopes = envelopes;
          ackedThisCycle += ids.length;
        }
      };

      const loops = Array.from({ length: LOOPS }, (_, p) => loop(p));
      const t0 = Date.now();
      await sleep(LOAD_MS[(cycle - 1) % LOAD_MS.length]!);
      // Make sure the kill lands on a loaded server with requests in flight.
      while ((ackedThisCycle < 50 || inFlight === 0) && Date.now() - t0 < 8_000) await sleep(5);
      const inFlightAtKill = inFlight;
      victim.signal('SIGKILL');
      const exit = await victim.waitExit(10_000);
      server = undefined;
      stop = true;
      await withTimeout(Promise.all(loops), 15_000, 'publisher loops did not finish after the kill');
      agent.destroy();

      assert.equal(exit.signal, 'SIGKILL', `the server was killed, not exited: ${JSON.stringify(exit)}`);
      assert.deepEqual(unexpected, [], 'every publish before the kill was answered 201');
      assert.ok(ackedThisCycle >= 50, `enough load before the kill (${ackedThisCycle} events acknowledged)`);
      assert.ok(inFlightAtKill > 0, 'requests were in flight at the kill');
      assert.ok(connectionErrors > 0, 'some requests were cut by the kill');

      // ---- restart and read the whole log back ------------------------------------------
      const tRestart = Date.now();
      server = await startServer({ dataDir });
      const tRead = Date.now();
      const log = await readAll(server.url, TENANT);
      const tCheck = Date.now();

      // Cursor order, strictly increasing; every event identifiable; no id twice.
      const position = new Map<string, number>();
      const attempted = new Set(attempts.flatMap((a) => a.ids));
      const dupes: string[] = [];
      const foreign: string[] = [];
      log.forEach((e, i) => {
        if (i > 0) {
          assert.ok(compareCursors(log[i - 1].cursor, e.cursor) < 0, `cursor ${e.cursor} (${e.id}) is not after ${log[i - 1].cursor} (${log[i - 1].id})`);
        }
        if (position.has(e.id)) dupes.push(e.id);
        position.set(e.id, i);
        if (!attempted.has(e.id)) foreign.push(e.id);
        assert.equal(e.tenant, TENANT);
        assert.equal(e.data?.id, e.id, `event ${e.id} carries its own id in data`);
      });
      assert.deepEqual(dupes, [], 'no event is in the log twice');
      assert.deepEqual(foreign, [], 'the log holds only events that were published');

      // Every acknowledged event is present, exactly as acknowledged (cursor included).
      const missing: string[] = [];
      const changed: string[] = [];
      for (const [id, envelope] of acked) {
        const i = position.get(id);
        if (i === undefined) {
          missing.push(id);
          continue;
        }
        if (log[i].cursor !== envelope.cursor) changed.push(`${id}: acked cursor ${envelope.cursor}, log ${log[i].cursor}`);
        else if (JSON.stringify(log[i]) !== JSON.stringify(envelope)) changed.push(`${id}: acked ${JSON.stringify(envelope)}, log ${JSON.stringify(log[i])}`);
      }
      assert.equal(missing.length, 0, `acknowledged events missing after SIGKILL + restart: ${short(missing)}`);
      assert.equal(changed.length, 0, `acknowledged events changed: ${short(changed, 5)}`);

      // What an earlier restart read back is still there, unchanged (the log is append-only).
      const vanished = [...previousLog.keys()].filter((id) => !position.has(id));
      assert.equal(vanished.length, 0, `events present after an earlier restart vanished: ${short(vanished)}`);
      for (const [id, envelope] of previousLog) assert.deepEqual(log[position.get(id)!], envelope);

      // No batch is partially present — acknowledged or cut by the kill — and a present batch
      // keeps its request order.
      const partial: string[] = [];
      for (const a of attempts.filter((x) => x.array)) {
        const at = a.ids.map((id) => position.get(id));
        const present = at.filter((i) => i !== undefined).length;
        if (present !== 0 && present !== a.ids.length) partial.push(`${a.ids[0]} (${present}/${a.ids.length})`);
        else if (present > 0) {
          for (let k = 1; k < at.length; k++) assert.ok(at[k]! > at[k - 1]!, `batch ${a.ids[0]} is in request order in the log`);
        }
      }
      assert.deepEqual(partial, [], 'array publishes are all-or-nothing');

      // ---- idempotent republish ---------------------------------------------------------
      const headBefore = await appendedTotal(server.url, TEST_ADMIN_KEY);
      const thisCycle = attempts.filter((a) => a.ids[0]!.startsWith(`c${cycle}-`));
      const singles = thisCycle.filter((a) => !a.array && a.envelopes).slice(0, 40);
      const batches = thisCycle.filter((a) => a.array && a.envelopes).slice(0, 5);
      // Committed but never acknowledged (the answer was lost in the kill): the producer's retry.
      const lostAnswers = thisCycle.filter((a) => !a.envelopes && position.has(a.ids[0]!));
      const agent2 = new http.Agent({ keepAlive: true, maxSockets: 8 });
      const republish = async (a: Attempt, asArray: boolean) => {
        if (asArray) {
          const r = await request(server!.url, '/v1/events', { body: a.events, agent: agent2 });
          assert.equal(r.status, 201, `republishing batch ${a.ids[0]}: ${r.status} ${r.text.slice(0, 200)}`);
          assert.deepEqual(r.body.events, a.ids.map((id) => log[position.get(id)!]), `republished batch ${a.ids[0]} maps to the originals`);
        } else {
          for (const [k, event] of a.events.entries()) {
            const r = await request(server!.url, '/v1/events', { body: event, agent: agent2 });
            assert.equal(r.status, 200, `republishing ${event.id}: ${r.status} ${r.text.slice(0, 200)}`);
            assert.deepEqual(r.body, log[position.get(a.ids[k]!)!], `republished ${event.id} answers the original envelope`);
          }
        }
        for (const id of a.ids) acked.set(id, log[position.get(id)!]);
      };
      const jobs: Array<() => Promise<void>> = [
        ...singles.map((a) => () => republish(a, false)),
        ...batches.map((a) => () => republish(a, true)),
        ...batches.slice(0, 2).map((a) => () => republish(a, false)),
        ...lostAnswers.map((a) => () => republish(a, a.array)),
      ];
      for (let i = 0; i < jobs.length; i += 8) await Promise.all(jobs.slice(i, i + 8).map((j) => j()));
      agent2.destroy();
      const headAfter = await appendedTotal(server.url, TEST_ADMIN_KEY);
      assert.equal(headAfter, headBefore, 'republishing stored nothing new');

      previousLog = new Map(log.map((e) => [e.id, e]));
      t.diagnostic(
        `acked this cycle ${ackedThisCycle}, in flight at kill ${inFlightAtKill}, committed but unanswered ${lostAnswers.length}, log ${log.length}; ` +
          `ms: start ${tLoad - tStart}, load ${tRestart - tLoad}, restart ${tRead - tRestart}, read ${tCheck - tRead}, check+republish ${Date.now() - tCheck}`,
      );
    });
  }
});

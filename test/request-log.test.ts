/**
 * One JSON log line per request (src/http/edge.ts): method, path, the status actually sent and
 * the request id, also for requests the edge refuses before any route (401 here; a 503 while
 * stopping takes the same path); never the key, the query string or the body.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startGateway, ADMIN_KEY } from './support/gateway.ts';
import { waitFor } from './support/wait.ts';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, logger: pino({ level: 'info' }, stream) };
}

test('request lines carry the status sent, for routes and for refusals before them', async () => {
  const { lines, logger } = capture();
  const g = await startGateway({ logger });
  try {
    const ok = await g.call('/v1/consumers?limit=5', { headers: { 'x-request-id': 'log-ok' } });
    assert.equal(ok.status, 200);
    const noKey = await g.call('/v1/consumers', { key: null, headers: { 'x-request-id': 'log-nokey' } });
    assert.equal(noKey.status, 401);
    const badKey = await g.call('/v1/consumers', { key: 'pga_wrong', headers: { 'x-request-id': 'log-badkey' } });
    assert.equal(badKey.status, 401);
    const missing = await g.call('/nowhere', { headers: { 'x-request-id': 'log-404' } });
    assert.equal(missing.status, 404);
    const bad = await g.call('/v1/events', { body: { tenant: 'a', type: 'x' }, headers: { 'x-request-id': 'log-400' } });
    assert.equal(bad.status, 400);

    const byId = (id: string) => lines.find((l) => l.msg === 'request' && l.req_id === id);
    await waitFor(() => byId('log-400') !== undefined, 2000, 'the last request line');
    assert.deepEqual(
      ['log-ok', 'log-nokey', 'log-badkey', 'log-404', 'log-400'].map((id) => [id, byId(id)?.status]),
      [['log-ok', 200], ['log-nokey', 401], ['log-badkey', 401], ['log-404', 404], ['log-400', 400]],
    );
    assert.equal(byId('log-ok')?.path, '/v1/consumers', 'the path without its query string');
    const text = JSON.stringify(lines);
    assert.ok(!text.includes(ADMIN_KEY) && !text.includes('pga_wrong'), 'no key in any line');
    assert.ok(!text.includes('limit=5'), 'no query string in any line');
  } finally {
    await g.close();
  }
});

/**
 * Logs for machines and for people: JSON lines when stdout is not a terminal (a pipe, a file, a
 * log shipper), readable lines with POLLGATE_LOG_FORMAT=pretty (the default at a terminal). The
 * start-up line says where the server and its ops page are, and a server that allows private
 * webhook targets says so at warn.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { killAllServers, spawnServer, startServer } from './support/process.ts';
import { waitFor } from './support/wait.ts';

after(killAllServers);

test('JSON lines on a pipe: the start-up line names the URL and /ui; allowing private targets is a warning', async (t) => {
  const server = await startServer({ env: { POLLGATE_ALLOW_PRIVATE_TARGETS: '1' } });
  t.after(() => server.kill());
  const listening = server.logLines().find((l) => l.msg === 'pollgate listening')!;
  assert.match(listening.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(listening.ui, `${listening.url}/ui`);
  assert.equal(typeof listening.time, 'number', 'epoch-ms times for machines');
  await waitFor(() => server.logLines().some((l) => l.level === 40 && /POLLGATE_ALLOW_PRIVATE_TARGETS/.test(l.msg)), 5_000, 'the warning');
});

test('POLLGATE_LOG_FORMAT=pretty: readable lines with a local time and the level, no colour codes off a terminal', async (t) => {
  const server = spawnServer({ env: { POLLGATE_LOG_FORMAT: 'pretty' } });
  t.after(() => server.kill());
  await waitFor(() => /pollgate listening/.test(server.stdout), 20_000, `the start-up line:\n${server.output()}`);
  const line = server.stdout.split('\n').find((l) => l.includes('pollgate listening'))!;
  assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: pollgate listening /);
  assert.match(line, /"ui":"http:\/\/127\.0\.0\.1:\d+\/ui"/);
  assert.doesNotMatch(server.stdout, /\u001b\[/, 'no ANSI colours when stdout is not a terminal');
  assert.doesNotMatch(line, /^\{/, 'not JSON');
});

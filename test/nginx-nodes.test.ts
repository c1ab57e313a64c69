/**
 * The README's load-balancer config for several nodes ("More than one node"), run for real:
 * nginx (Debian's) with that very upstream and location block, in front of two nodes on one
 * PostgreSQL database. Polls held through nginx are woken by publishes through nginx whichever
 * node each lands on, and when one node stops, requests go on through the other.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { POSTGRES_ONLY } from './support/engine.ts';
import { createTestDatabase } from './support/postgres.ts';
import { ADMIN_KEY, startGateway, tempDir } from './support/gateway.ts';
import { ROOT } from './support/process.ts';
import { unusedPort } from './support/receiver.ts';
import { waitUntil, within } from './support/wait.ts';

const nginxMissing = spawnSync('nginx', ['-v']).error ? 'nginx is not installed (apt-get install nginx; .ci/run does)' : false;

/** The nginx block of the README's "More than one node" section, pointed at the test's ports. */
function readmeConfig(port: number, upstreams: string[]): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## More than one node'));
  const block = /```nginx\n([\s\S]*?)```/.exec(section.slice(0, section.indexOf('\n## ', 5)))?.[1];
  assert.ok(block, 'the README shows an nginx config for several nodes');
  const servers = block.match(/^\s*server \d+\.\d+\.\d+\.\d+:\d+;.*$/gm) ?? [];
  assert.equal(servers.length, 2, 'two upstream nodes in the README');
  let conf = block;
  servers.forEach((line, i) => (conf = conf.replace(line, `      server ${upstreams[i]};`)));
  return conf.replace(/listen 443 ssl;/, `listen 127.0.0.1:${port};`);
}

test('nginx with the README config in front of two nodes: polls and publishes through it, one node stopped', { skip: POSTGRES_ONLY || nginxMissing, timeout: 60_000 }, async (t) => {
  const database = await createTestDatabase('pollgate_nginx');
  const a = await startGateway({ config: { databaseUrl: database.url } });
  const b = await startGateway({ config: { databaseUrl: database.url } });
  const dir = tempDir('pollgate-nginx-');
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, sub));
  const port = await unusedPort();
  const conf = `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${readmeConfig(port, [new URL(a.url).host, new URL(b.url).host])}
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: 'ignore' });
  t.after(async () => {
    nginx.kill('SIGTERM');
    await a.close();
    await b.close();
    await database.drop();
  });
  const lb = `http://127.0.0.1:${port}`;
  const call = (path: string, init: { key?: string; body?: unknown } = {}) =>
    fetch(lb + path, {
      method: init.body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${init.key ?? ADMIN_KEY}`, 'content-type': 'application/json' },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
  await waitUntil(async () => (await fetch(`${lb}/healthz`).catch(() => null))?.status === 200, 10_000, () => `nginx on ${port}: ${readFileSync(join(dir, 'error.log'), 'utf8').slice(-500)}`);

  const consumer = (await call('/v1/consumers', { body: { tenant: 'lb' } })).body;
  const nodesSeen = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const held = call('/v1/events?wait=10', { key: consumer.key });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const published = (await call('/v1/events', { body: { tenant: 'lb', type: 'l.x', data: i } })).body;
    const r = await within(held, 5_000, `poll ${i} through nginx`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.events.map((e: any) => e.id), [published.id]);
    assert.equal((await call('/v1/ack', { key: consumer.key, body: { cursor: published.cursor } })).status, 200);
  }
  for (let i = 0; i < 4; i++) nodesSeen.add((await call('/readyz')).body.node);
  assert.equal(nodesSeen.size, 2, 'nginx spread the requests over both nodes');

  await a.gateway.stop();
  for (let i = 0; i < 4; i++) {
    const published = await call('/v1/events', { body: { tenant: 'lb', type: 'l.x', data: `after-${i}` } });
    assert.equal(published.status, 201, JSON.stringify(published.body));
    const r = await call('/v1/events?wait=0', { key: consumer.key });
    assert.equal(r.status, 200, 'polls go on through the node still up');
    assert.deepEqual(r.body.events.map((e: any) => e.data), Array.from({ length: i + 1 }, (_, k) => `after-${k}`));
  }
});

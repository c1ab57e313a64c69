/**
 * The `pollgate` command, spawned for real (`node bin/pollgate.js …` in the package root)
 * against a real gateway on a loopback port: --help everywhere, exit codes, the consumers
 * commands, `tail` (NDJSON, acks) and `forward` (signed deliveries to a real node:http
 * receiver, retries, redirects refused, SIGTERM).
 *
 * Every child is tracked and killed in `after`; every wait is bounded.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { ADMIN_KEY, startGateway, type TestGateway } from './support/gateway.ts';
import { unusedPort } from './support/receiver.ts';
import { sleep, waitFor } from './support/wait.ts';
import { killChildren, run, start, stop, type Child } from './support/cli.ts';

const SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;

let tenantSeq = 0;
const freshTenant = (label = 't') => `cli-${label}-${++tenantSeq}`;

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

after(killChildren);

describe('pollgate --help and exit codes', () => {
  test('--help works on every command and exits 0', async () => {
    const commands = [
      [],
      ['consumers'],
      ['consumers', 'create'],
      ['consumers', 'list'],
      ['consumers', 'get'],
      ['consumers', 'seek'],
      ['consumers', 'rotate-key'],
      ['consumers', 'delete'],
      ['consumers', 'update'],
      ['webhooks'],
      ['webhooks', 'put'],
      ['webhooks', 'patch'],
      ['webhooks', 'get'],
      ['webhooks', 'delete'],
      ['webhooks', 'preview'],
      ['webhooks', 'test'],
      ['deliveries'],
      ['bridge'],
      ['bridge', 'pause'],
      ['bridge', 'resume'],
      ['backup'],
      ['restore'],
      ['publish'],
      ['tail'],
      ['forward'],
      ['serve'],
    ];
    // Four at a time: a burst of node processes on a loaded 2-core machine outlasts run()'s bound.
    const results: Array<Awaited<ReturnType<typeof run>>> = [];
    for (let i = 0; i < commands.length; i += 4) {
      results.push(...(await Promise.all(commands.slice(i, i + 4).map((cmd) => run([...cmd, '--help'])))));
    }
    const helpOf = (...cmd: string[]) => results[commands.findIndex((c) => c.join(' ') === cmd.join(' '))]!.stdout;
    for (const [i, r] of results.entries()) {
      const cmd = commands[i]!;
      assert.equal(r.code, 0, `${cmd.join(' ')} --help: ${r.stderr}`);
      assert.ok(r.stdout.startsWith(`Usage: pollgate${cmd.length ? ` ${cmd.join(' ')}` : ''}`), `${cmd.join(' ')} --help:\n${r.stdout}`);
    }
    const serveHelp = helpOf('serve');
    assert.match(serveHelp, /--data-dir\s+POLLGATE_DATA_DIR/, 'serve --help shows the server options');
    assert.match(serveHelp, /--retention\s+POLLGATE_RETENTION/);
    const top = results[0]!.stdout;
    for (const name of ['serve', 'consumers', 'webhooks', 'deliveries', 'bridge', 'tail', 'forward']) assert.match(top, new RegExp(`\\n  ${name}\\b`));
    assert.match(helpOf('forward'), /--secret/);
    assert.match(helpOf('tail'), /--no-ack/);
    assert.match(helpOf('webhooks', 'put'), /--header/);
    assert.match(helpOf('webhooks', 'put'), /--auth-bearer-file/);
    assert.match(helpOf('webhooks', 'test'), /--cursor/);
  });

  test('usage errors exit 2; runtime errors exit 1', async () => {
    const closed = `http://127.0.0.1:${await unusedPort()}`;
    const [unknown, noTenant, badStart, noKey, badFilter, afterWithAck, badSecret, serveBadFlag, noSub, refused] = await Promise.all([
      run(['frobnicate']),
      run(['consumers', 'create', '--key', 'k']),
      run(['consumers', 'create', '--tenant', 'a', '--start', 'yesterday', '--key', 'k']),
      run(['consumers', 'list']),
      run(['consumers', 'create', '--tenant', 'a', '--filter', '{nope', '--key', 'k']),
      run(['tail', '--after', 't0000000000000001', '--key', 'pgk_x']),
      run(['forward', '--to', `${closed}/`, '--secret', 'nope', '--key', 'pgk_x']),
      run(['serve', '--no-such-flag']),
      run(['consumers']),
      run(['consumers', 'list', '--url', closed, '--key', 'k']),
    ]);
    for (const [name, r] of Object.entries({ unknown, noTenant, badStart, noKey, badFilter, afterWithAck, badSecret, serveBadFlag, noSub })) {
      assert.equal(r.code, 2, `${name}: exit ${r.code}, stderr: ${r.stderr}`);
      assert.ok(r.stderr.length > 0, `${name} says why on stderr`);
      assert.equal(r.stdout.includes('{'), false, `${name} prints no JSON`);
    }
    assert.match(noTenant.stderr, /--tenant/);
    assert.match(badStart.stderr, /--start/);
    assert.match(noKey.stderr, /POLLGATE_ADMIN_KEY/);
    assert.match(badFilter.stderr, /--filter/);
    assert.match(badSecret.stderr, /--secret/);
    assert.equal(refused.code, 1, `unreachable gateway: ${refused.stderr}`);
    assert.match(refused.stderr, /refused|ECONNREFUSED/i);
  });
});

describe('pollgate against a gateway', () => {
  let g: TestGateway;
  before(async () => {
    g = await startGateway();
  });
  after(async () => {
    await g?.close();
  });

  const adminEnv = () => ({ POLLGATE_URL: g.url, POLLGATE_ADMIN_KEY: ADMIN_KEY });
  const consumerCursor = async (id: string): Promise<string> => (await g.json(`/v1/consumers/${id}`)).body.cursor;

  describe('consumers', () => {
    test('create / list / get / seek round trip, JSON on stdout', async () => {
      const tenant = freshTenant('consumers');
      const evs = (await g.publish([1, 2, 3].map((i) => ({ tenant, type: 'ticket.created', data: { i } })))).events;

      const created = await run(
        ['consumers', 'create', '--tenant', tenant, '--name', 'worker', '--filter', '{"types":["ticket.*"]}', '--start', 'earliest'],
        adminEnv(),
      );
      assert.equal(created.code, 0, created.stderr);
      const c = JSON.parse(created.stdout);
      assert.match(c.id, /^con_/);
      assert.match(c.key, /^pgk_/);
      assert.equal(c.name, 'worker');
      assert.deepEqual(c.filter, { types: ['ticket.*'] });
      assert.equal(c.lag, 3);

      // --url and --key flags instead of the environment.
      const listed = await run(['consumers', 'list', '--tenant', tenant, '--url', g.url, '--key', ADMIN_KEY]);
      assert.equal(listed.code, 0, listed.stderr);
      const list = JSON.parse(listed.stdout);
      assert.ok(Array.isArray(list));
      assert.deepEqual(list.map((x: any) => x.id), [c.id]);
      assert.equal(list[0].key, undefined);

      const sought = await run(['consumers', 'seek', c.id, '--to', `cursor:${evs[1].cursor}`], adminEnv());
      assert.equal(sought.code, 0, sought.stderr);
      assert.equal(JSON.parse(sought.stdout).cursor, evs[1].cursor);
      assert.equal(await consumerCursor(c.id), evs[1].cursor);

      const latest = await run(['consumers', 'seek', c.id, '--to', 'latest'], adminEnv());
      assert.equal(JSON.parse(latest.stdout).cursor, evs[2].cursor);
      const byTime = await run(['consumers', 'seek', c.id, '--to', 'time:2000-01-01T00:00:00Z'], adminEnv());
      assert.equal(JSON.parse(byTime.stdout).lag, 3);

      const got = await run(['consumers', 'get', c.id], adminEnv());
      assert.equal(JSON.parse(got.stdout).id, c.id);

      const missing = await run(['consumers', 'seek', 'con_nope', '--to', 'earliest'], adminEnv());
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /404 not_found/);

      const badFilter = await run(['consumers', 'create', '--tenant', tenant, '--filter', '{"where":[],"expression":"1"}'], adminEnv());
      assert.equal(badFilter.code, 1, 'the server refusing a filter is a runtime error');
      assert.match(badFilter.stderr, /invalid_filter/);
    });
  });

  describe('tail', () => {
    test('prints each event as one NDJSON line and acks after printing (--count)', async () => {
      const tenant = freshTenant('tail');
      const c = await g.createConsumer({ tenant });
      const evs = (await g.publish([1, 2, 3].map((i) => ({ tenant, type: 'ticket.created', data: { i, s: 'é\u2028' } })))).events;
      const r = await run(['tail', '--count', '3', '--wait', '1', '--limit', '2'], { POLLGATE_URL: g.url, POLLGATE_KEY: c.key });
      assert.equal(r.code, 0, r.stderr);
      const out = lines(r.stdout).map((l) => JSON.parse(l));
      assert.deepEqual(out, evs, 'each line is the envelope, in order');
      assert.equal(lines(r.stdout).length, 3);
      assert.equal(await consumerCursor(c.id), evs[2].cursor, 'acked through the last printed event');
    });

    test('a live tail prints events as they are published, acks them, and stops on SIGTERM with exit 0', async () => {
      const tenant = freshTenant('tail-live');
      const c = await g.createConsumer({ tenant });
      const child = start(['tail', '--wait', '20', '--key', c.key, '--url', g.url]);
      await waitFor(async () => (await g.json(`/v1/consumers/${c.id}`)).body.polling === true, 10_000, 'tail holds a poll', 10);
      const a = await g.publish({ tenant, type: 'live.one', data: 1 });
      const b = await g.publish({ tenant, type: 'live.two', data: 2 });
      await waitFor(() => lines(child.stdout).length === 2, 5000, 'two lines', 10);
      assert.deepEqual(lines(child.stdout).map((l) => JSON.parse(l).id), [a.id, b.id]);
      await waitFor(async () => (await consumerCursor(c.id)) === b.cursor, 5000, 'acked after printing', 10);
      assert.equal(await stop(child), 0);
    });

    test('--no-ack reads with `after` and leaves the cursor alone', async () => {
      const tenant = freshTenant('tail-noack');
      const c = await g.createConsumer({ tenant });
      const evs = (await g.publish([1, 2, 3].map((i) => ({ tenant, type: 'x.y', data: i })))).events;
      const all = await run(['tail', '--no-ack', '--count', '3', '--wait', '1', '--limit', '1'], { POLLGATE_URL: g.url, POLLGATE_KEY: c.key });
      assert.equal(all.code, 0, all.stderr);
      assert.deepEqual(lines(all.stdout).map((l) => JSON.parse(l).id), evs.map((e: any) => e.id));
      const from = await run(['tail', '--no-ack', '--after', evs[1].cursor, '--count', '1', '--wait', '1'], { POLLGATE_URL: g.url, POLLGATE_KEY: c.key });
      assert.deepEqual(lines(from.stdout).map((l) => JSON.parse(l).id), [evs[2].id]);
      assert.equal(await consumerCursor(c.id), c.cursor, 'nothing committed');
    });
  });

  describe('forward', () => {
    interface Received {
      headers: IncomingHttpHeaders;
      body: string;
      method: string;
      url: string;
    }
    let receiver: Server;
    let trap: Server;
    let receiverUrl: string;
    let trapUrl: string;
    const received: Received[] = [];
    const trapped: Received[] = [];
    /** How the receiver answers the n-th request (0-based); 204 by default. */
    let respond: (n: number, req: Received, res: ServerResponse) => void | Promise<void> = (_n, _r, res) => void res.writeHead(204).end();

    function listen(server: Server): Promise<string> {
      return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`)));
    }

    before(async () => {
      receiver = createServer((req, res) => {
        let body = '';
        req.setEncoding('utf8').on('data', (d) => (body += d));
        req.on('end', () => {
          const r = { headers: req.headers, body, method: req.method!, url: req.url! };
          const n = received.push(r) - 1;
          void respond(n, r, res);
        });
      });
      trap = createServer((req, res) => {
        trapped.push({ headers: req.headers, body: '', method: req.method!, url: req.url! });
        res.writeHead(200).end();
      });
      receiverUrl = await listen(receiver);
      trapUrl = await listen(trap);
    });
    after(async () => {
      receiver.closeAllConnections();
      trap.closeAllConnections();
      await new Promise((resolve) => receiver.close(resolve));
      await new Promise((resolve) => trap.close(resolve));
    });

    const reset = (fn: typeof respond = (_n, _r, res) => void res.writeHead(204).end()) => {
      received.length = 0;
      trapped.length = 0;
      respond = fn;
    };

    test('delivers every event in order, as received, signed (Standard Webhooks); acks; SIGTERM exits 0', async () => {
      reset();
      const tenant = freshTenant('fwd');
      const c = await g.createConsumer({ tenant });
      const data = [{ i: 1, text: 'héllo \u2028 "quoted"' }, [1, 2.5, null], 'plain'];
      const evs = (await g.publish(data.map((d) => ({ tenant, type: 'ticket.created', data: d })))).events;
      // The exact bytes the gateway serves, to compare the forwarded bodies with.
      const raw = await (await g.call(`/v1/events?wait=0&after=${c.cursor}`, { key: c.key })).text();

      const child = start(['forward', '--to', `${receiverUrl}/hook`, '--secret', SECRET, '--header', 'X-Env: test', '--wait', '2', '--limit', '2'], {
        POLLGATE_URL: g.url,
        POLLGATE_KEY: c.key,
      });
      await waitFor(() => received.length >= 3, 10_000, 'three deliveries', 10);
      await waitFor(async () => (await consumerCursor(c.id)) === evs[2].cursor, 5000, 'acked after the 2xx', 10);
      assert.equal(received.length, 3, 'each event once');

      const wh = new Webhook(SECRET);
      for (const [i, r] of received.entries()) {
        assert.equal(r.method, 'POST');
        assert.equal(r.url, '/hook');
        assert.deepEqual(JSON.parse(r.body), evs[i], 'the envelope, in log order');
        assert.ok(raw.includes(r.body), 'byte for byte the envelope the gateway served');
        assert.equal(r.headers['webhook-id'], evs[i].id);
        assert.match(String(r.headers['content-type']), /^application\/json/);
        assert.equal(r.headers['x-env'], 'test');
        assert.deepEqual(wh.verify(r.body, r.headers as Record<string, string>), evs[i], 'signature verifies');
      }
      assert.throws(() => new Webhook(`whsec_${Buffer.from('another secret of 32 bytes......').toString('base64')}`).verify(received[0]!.body, received[0]!.headers as Record<string, string>));

      assert.equal(await stop(child), 0, child.stderr);
      assert.equal(lines(child.stderr).filter((l) => / → 204 /.test(l)).length, 3, `one log line per delivery:\n${child.stderr}`);
      assert.equal(child.stdout, '', 'stdout stays empty');
    });

    test('500 twice then 200: the same event is retried (same webhook-id); the cursor moves only after the 2xx', async () => {
      const tenant = freshTenant('fwd-retry');
      const c = await g.createConsumer({ tenant });
      const cursorsDuringFailures: string[] = [];
      reset(async (n, _r, res) => {
        cursorsDuringFailures.push(await consumerCursor(c.id));
        res.writeHead(n < 2 ? 500 : 200, { 'content-type': 'text/plain' }).end(n < 2 ? 'nope' : 'ok');
      });
      const [e1, e2] = (await g.publish([{ tenant, type: 'a.b', data: 1 }, { tenant, type: 'a.b', data: 2 }])).events;
      const child = start(['forward', '--to', `${receiverUrl}/hook`, '--secret', SECRET, '--wait', '2'], { POLLGATE_URL: g.url, POLLGATE_KEY: c.key });
      await waitFor(() => received.length >= 4, 10_000, 'three attempts at the first event and one at the second', 10);
      await waitFor(async () => (await consumerCursor(c.id)) === e2.cursor, 5000, 'acked after the 2xx', 10);
      assert.deepEqual(received.map((r) => r.headers['webhook-id']), [e1.id, e1.id, e1.id, e2.id], 'retried in place, in order');
      assert.deepEqual(received.slice(0, 3).map((r) => r.body), Array(3).fill(received[0]!.body), 'the same body on every attempt');
      assert.deepEqual(cursorsDuringFailures.slice(0, 3), [c.cursor, c.cursor, c.cursor], 'not acked before the 2xx');
      assert.equal(await stop(child), 0);
      assert.equal(lines(child.stderr).filter((l) => /HTTP 500.*retrying/.test(l)).length, 2, child.stderr);
    });

    test('a 302 is a failure and its Location is never contacted; SIGTERM while retrying acks nothing', async () => {
      const tenant = freshTenant('fwd-redirect');
      const c = await g.createConsumer({ tenant });
      reset((_n, _r, res) => void res.writeHead(302, { location: `${trapUrl}/stolen` }).end());
      await g.publish({ tenant, type: 'a.b', data: 'secret stuff' });
      const child = start(['forward', '--to', `${receiverUrl}/hook`, '--secret', SECRET, '--wait', '2'], { POLLGATE_URL: g.url, POLLGATE_KEY: c.key });
      await waitFor(() => received.length >= 2, 10_000, 'the redirect retried', 10);
      assert.equal(trapped.length, 0, 'the Location was not followed');
      assert.equal(await consumerCursor(c.id), c.cursor, 'a 3xx does not ack');
      assert.match(child.stderr, /HTTP 302/);
      assert.equal(await stop(child), 0);
      assert.equal(await consumerCursor(c.id), c.cursor, 'stopping does not ack the undelivered event');
      assert.equal(trapped.length, 0);
    });

    test('without --secret, one is generated, printed to stderr once, and signs the deliveries', async () => {
      reset();
      const tenant = freshTenant('fwd-gen');
      const c = await g.createConsumer({ tenant });
      const e = await g.publish({ tenant, type: 'a.b', data: null });
      const child = start(['forward', '--to', `${receiverUrl}/x`, '--wait', '2', '--key', c.key, '--url', g.url]);
      await waitFor(() => received.length === 1, 10_000, 'the delivery', 10);
      const printed = child.stderr.match(/whsec_[A-Za-z0-9+/=]+/g) ?? [];
      assert.equal(printed.length, 1, child.stderr);
      assert.deepEqual(new Webhook(printed[0]!).verify(received[0]!.body, received[0]!.headers as Record<string, string>), e);
      assert.equal(await stop(child), 0);
    });

    test('SIGTERM while a poll is held exits 0 promptly', async () => {
      reset();
      const tenant = freshTenant('fwd-idle');
      const c = await g.createConsumer({ tenant });
      const child = start(['forward', '--to', `${receiverUrl}/x`, '--secret', SECRET, '--wait', '30'], { POLLGATE_URL: g.url, POLLGATE_KEY: c.key });
      await waitFor(async () => (await g.json(`/v1/consumers/${c.id}`)).body.polling === true, 10_000, 'forward holds a poll', 10);
      const t0 = performance.now();
      assert.equal(await stop(child), 0);
      assert.ok(performance.now() - t0 < 3000, 'stopped promptly');
      await waitFor(async () => (await g.json(`/v1/consumers/${c.id}`)).body.polling === false, 3000, 'the held poll released', 10);
    });
  });
});

/**
 * The Python client (src/client/python/pollgate_client.py), its forward example (forward.py) and
 * the README's curl/bash long-poll loop, run for real: the machine's `python3` and `bash` + `curl`
 * + `jq` as child processes against real gateways on loopback ports (SQLite, or PostgreSQL with
 * POLLGATE_TEST_ENGINE=postgres), a real receiver for forward, and a small real HTTP proxy where
 * a test needs to see or change what travels (the waits asked, a header, a proxy's 503).
 *
 * The Python scripts print one JSON object per line on stdout (`emit`); the tests read those
 * lines and the gateway's own views (committed cursor, held poll). Every wait is bounded. Without
 * python3 (or curl/jq for the loop) the tests are skipped saying why, except under CI=true, where
 * a missing tool fails the suite.
 */
import { test, describe, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { consumerOf, gatewayFor, startGateway, tempDir, waitForCursor, type TestGateway } from './support/gateway.ts';
import { FakeClock } from './support/fake-clock.ts';
import { receiverFor, verify } from './support/receiver.ts';
import { sleep, waitFor, within } from './support/wait.ts';

const PYTHON_DIR = fileURLToPath(new URL('../src/client/python/', import.meta.url));
const IN_CI = process.env.CI === 'true';

function available(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}
const HAVE_PYTHON = available('python3', ['--version']);
const HAVE_SHELL_TOOLS = available('bash', ['--version']) && available('curl', ['--version']) && available('jq', ['--version']);
/** Skipped only off CI: there a missing tool must fail, not hide the tests. */
const SKIP_PYTHON = HAVE_PYTHON || IN_CI ? false : 'python3 is not on PATH (install it to run these tests)';
const SKIP_SHELL = HAVE_SHELL_TOOLS || IN_CI ? false : 'bash, curl and jq are needed for the README loop (install them to run it)';

/**
 * The README's plain shell consumer, read from README.md and run exactly as printed there (so
 * the two cannot drift apart). The page is acked (on the next poll) only after the handler
 * succeeded for every event of it.
 */
const SHELL_LOOP = (() => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /### Plain shell[\s\S]*?```bash\n([\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('README.md: no ```bash block under "### Plain shell"');
  return block[1]!;
})();

/** Python prelude of every script: the client from $POLLGATE_URL/$POLLGATE_KEY, emit() for lines. */
const PRELUDE = `
import json, logging, os, signal, sys, threading, time
from pollgate_client import Backoff, Client, CursorExpired, NetworkError, PollgateError, stop_on_signals

def emit(**fields):
    print(json.dumps(fields), flush=True)

client = Client(os.environ["POLLGATE_URL"], os.environ["POLLGATE_KEY"])
`;

let scriptDir: string;
before(() => {
  scriptDir = mkdtempSync(join(tmpdir(), 'pollgate-py-'));
});
after(() => {
  rmSync(scriptDir, { recursive: true, force: true });
});

let scriptSeq = 0;

interface Child {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** stdout's JSON lines so far. */
  lines(): any[];
  /** Waits until some stdout line satisfies pred. */
  waitForLine(pred: (line: any) => boolean, what: string, ms?: number): Promise<void>;
  /** Exit code (or the signal's name), within ms. */
  exit(ms?: number): Promise<number | string>;
}

/** Spawns a child in its own process group; it is killed (group and all) when the test ends. */
function spawnChild(t: TestContext, command: string, args: string[], env: Record<string, string>): Child {
  const child = spawn(command, args, {
    env: { ...process.env, PYTHONPATH: PYTHON_DIR, PYTHONUNBUFFERED: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const c: Child = {
    child,
    stdout: '',
    stderr: '',
    lines: () =>
      c.stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l)),
    waitForLine: (pred, what, ms = 15_000) => waitFor(() => c.lines().some(pred), ms, `${what}\nstdout:\n${c.stdout}\nstderr:\n${c.stderr}`, 10),
    exit: (ms = 10_000) => within(exited, ms, `child exit\nstdout:\n${c.stdout}\nstderr:\n${c.stderr}`),
  };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (c.stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (c.stderr += d));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    }
  });
  return c;
}

/** Runs a Python script (the prelude, then body) against a gateway with a consumer key. */
function runPython(t: TestContext, body: string, env: Record<string, string>): Child {
  const file = join(scriptDir, `script-${++scriptSeq}.py`);
  writeFileSync(file, PRELUDE + body);
  return spawnChild(t, 'python3', [file], env);
}

function runForward(t: TestContext, args: string[], env: Record<string, string>): Child {
  return spawnChild(t, 'python3', [join(PYTHON_DIR, 'forward.py'), ...args], env);
}

let tenantSeq = 0;
const freshTenant = (label: string) => `py-${label}-${++tenantSeq}`;

/** Publishes events with ids `${tenant}-e<from>`…; answers their envelopes in order. */
async function publishNumbered(g: TestGateway, tenant: string, from: number, count: number): Promise<any[]> {
  const input = Array.from({ length: count }, (_, i) => ({ id: `${tenant}-e${from + i}`, tenant, type: 'ticket.created', data: { n: from + i } }));
  return (await g.publish(input)).events;
}

const eventIds = (lines: any[]) => lines.filter((l) => 'event' in l).map((l) => l.event as string);

/** Waits until the gateway shows a poll held by the consumer. */
async function waitForHeldPoll(g: TestGateway, id: string, held = true): Promise<void> {
  await waitFor(async () => (await consumerOf(g, id)).polling === held, 10_000, `consumer ${id} polling=${held}`, 20);
}

interface ProxyOptions {
  /** Answer this request here instead of forwarding it. */
  intercept?: (req: IncomingMessage, n: number) => { status: number; headers?: Record<string, string>; body?: string } | undefined;
  /** Headers added to every answer to GET /v1/events. */
  addToPolls?: Record<string, string>;
  /** Headers taken out of every answer (lower-case names), as from an older server. */
  drop?: string[];
}

interface Seen {
  url: URL;
  key: string;
  at: number;
}

/** A real HTTP proxy in front of a gateway that records each request and can change answers. */
async function proxyFor(t: TestContext, upstream: string, opts: ProxyOptions = {}): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const n = seen.push({ url: new URL(req.url ?? '/', 'http://proxy'), key: String(req.headers.authorization ?? ''), at: performance.now() }) - 1;
    const local = opts.intercept?.(req, n);
    if (local) {
      req.resume();
      res.writeHead(local.status, local.headers).end(local.body ?? '');
      return;
    }
    const isPoll = req.method === 'GET' && (req.url ?? '').startsWith('/v1/events');
    const up = http.request(upstream + req.url, { method: req.method, headers: req.headers }, (answer) => {
      const headers = { ...answer.headers, ...(isPoll ? opts.addToPolls : {}) };
      for (const name of opts.drop ?? []) delete headers[name];
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    });
    up.on('error', () => res.destroy());
    // A client that goes away takes its held poll with it, as without the proxy.
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const waitsAsked = (seen: Seen[], key?: string) =>
  seen.filter((s) => s.url.pathname === '/v1/events' && (key === undefined || s.key === `Bearer ${key}`)).map((s) => s.url.searchParams.get('wait'));

test('python3, bash, curl and jq are on PATH (required under CI)', { skip: IN_CI ? false : 'checked under CI=true only' }, () => {
  assert.ok(HAVE_PYTHON, 'python3 is needed for the Python client tests');
  assert.ok(HAVE_SHELL_TOOLS, 'bash, curl and jq are needed for the README loop');
});

describe('Python client: events()', { skip: SKIP_PYTHON }, () => {
  test('in order; a consumer killed mid-page gets that page again on restart, nothing skipped, nothing else twice', async (t) => {
    const g = await gatewayFor(t);
    const tenant = freshTenant('restart');
    const c = await g.createConsumer({ tenant });
    const evs = await publishNumbered(g, tenant, 1, 10);
    const ids = evs.map((e) => e.id as string);
    const env = { POLLGATE_URL: g.url, POLLGATE_KEY: c.key };

    // Run 1: pages of 4; it hangs inside the handler of the 6th event and is killed there.
    const first = runPython(
      t,
      `
handled = 0
for event in client.events(wait=2, limit=4):
    emit(event=event["id"])
    handled += 1
    if handled == 6:
        time.sleep(120)
`,
      env,
    );
    await first.waitForLine((l) => l.event === ids[5], 'the 6th event handled');
    assert.deepEqual(eventIds(first.lines()), ids.slice(0, 6), 'in log order');
    assert.equal((await consumerOf(g, c.id)).cursor, evs[3].cursor, 'page 1 acked (riding on the poll for page 2), page 2 not');
    process.kill(-first.child.pid!, 'SIGKILL');
    assert.equal(await first.exit(), 'SIGKILL');
    assert.equal((await consumerOf(g, c.id)).cursor, evs[3].cursor);

    // Run 2: the unfinished page from its first event, then everything after, then a new event.
    const second = runPython(
      t,
      `
stop = threading.Event()
for event in client.events(wait=2, limit=4, stop=stop):
    emit(event=event["id"])
    if event["id"] == os.environ["LAST"]:
        stop.set()
emit(ended=True)
`,
      { ...env, LAST: `${tenant}-e11` },
    );
    await second.waitForLine((l) => l.event === ids[9], 'the backlog');
    const late = await publishNumbered(g, tenant, 11, 1);
    assert.equal(await second.exit(), 0, second.stderr);
    assert.deepEqual(eventIds(second.lines()), [...ids.slice(4), late[0].id], 'page 2 again from its start, then on');
    assert.ok(second.lines().some((l) => l.ended));
    assert.equal((await consumerOf(g, c.id)).cursor, late[0].cursor, 'all committed on the clean stop');

    const all = [...eventIds(first.lines()), ...eventIds(second.lines())];
    assert.deepEqual([...new Set(all)], [...ids, late[0].id], 'every event, in order');
    assert.deepEqual(all.filter((id, i) => all.indexOf(id) !== i), ids.slice(4, 6), 'only the finished part of the unacked page came twice');
  });

  test('a handler that raises: the exception propagates, nothing more is acked, the page comes again', async (t) => {
    const g = await gatewayFor(t);
    const tenant = freshTenant('raise');
    const c = await g.createConsumer({ tenant });
    const evs = await publishNumbered(g, tenant, 1, 6);
    const py = runPython(
      t,
      `
try:
    for event in client.events(wait=2, limit=3):
        if event["id"] == os.environ["FAIL_ON"]:
            raise RuntimeError("handler failed on " + event["id"])
        emit(event=event["id"])
except RuntimeError as error:
    emit(raised=str(error))
emit(committed=client.consumer()["cursor"])
emit(again=[e["id"] for e in client.poll(wait=0)["events"]])
`,
      { POLLGATE_URL: g.url, POLLGATE_KEY: c.key, FAIL_ON: evs[4].id },
    );
    assert.equal(await py.exit(), 0, py.stderr);
    const lines = py.lines();
    assert.deepEqual(eventIds(lines), [evs[0].id, evs[1].id, evs[2].id, evs[3].id]);
    assert.equal(lines.find((l) => 'raised' in l)?.raised, `handler failed on ${evs[4].id}`);
    assert.equal(lines.find((l) => 'committed' in l)?.committed, evs[2].cursor, 'page 1 acked; page 2 not');
    assert.equal((await consumerOf(g, c.id)).cursor, evs[2].cursor);
    assert.deepEqual(lines.find((l) => 'again' in l)?.again, [evs[3].id, evs[4].id, evs[5].id], 'the unfinished page comes again');
  });

  test('stop set mid-page: the iterator ends cleanly and commits exactly what the body finished (POST /v1/ack)', async (t) => {
    const g = await gatewayFor(t);
    const tenant = freshTenant('stop');
    const c = await g.createConsumer({ tenant });
    const evs = await publishNumbered(g, tenant, 1, 5);
    const py = runPython(
      t,
      `
stop = threading.Event()
for event in client.events(wait=2, stop=stop):
    emit(event=event["id"])
    if event["id"] == os.environ["STOP_AT"]:
        stop.set()
emit(ended=True)
`,
      { POLLGATE_URL: g.url, POLLGATE_KEY: c.key, STOP_AT: evs[2].id },
    );
    assert.equal(await py.exit(), 0, py.stderr);
    assert.deepEqual(eventIds(py.lines()), evs.slice(0, 3).map((e) => e.id), 'nothing after the stop');
    assert.ok(py.lines().some((l) => l.ended), 'ended without an exception');
    // One page of five: only the final ack can commit the middle of it.
    assert.equal((await consumerOf(g, c.id)).cursor, evs[2].cursor, 'the 3rd event committed, not the 5th, not nothing');
  });

  test('SIGTERM (sets stop) while a 25 s poll is held: exits 0 at once, the held poll is released', async (t) => {
    const g = await gatewayFor(t);
    const tenant = freshTenant('sigterm');
    const c = await g.createConsumer({ tenant });
    const evs = await publishNumbered(g, tenant, 1, 2);
    const py = runPython(
      t,
      `
stop = threading.Event()
stop_on_signals(stop)
for event in client.events(wait=25, stop=stop):
    emit(event=event["id"])
emit(ended=True)
`,
      { POLLGATE_URL: g.url, POLLGATE_KEY: c.key },
    );
    await py.waitForLine((l) => l.event === evs[1].id, 'both events');
    await waitForHeldPoll(g, c.id);
    const t0 = performance.now();
    py.child.kill('SIGTERM');
    assert.equal(await py.exit(5_000), 0, py.stderr);
    const tookMs = performance.now() - t0;
    assert.ok(tookMs < 2_000, `stopped in ${Math.round(tookMs)} ms`);
    assert.ok(py.lines().some((l) => l.ended));
    await waitForHeldPoll(g, c.id, false);
    assert.equal((await consumerOf(g, c.id)).cursor, evs[1].cursor, 'the ack rode on the held poll');
  });

  test('409 superseded: another poll takes over, the iterator backs off and holds again; raised after max_superseded in a row', async (t) => {
    const g = await gatewayFor(t);
    const tenant = freshTenant('superseded');
    const c = await g.createConsumer({ tenant });
    const py = runPython(
      t,
      `
def on_error(error, info):
    emit(retry=error.code, attempt=info.attempt, delay=info.delay)
try:
    for event in client.events(wait=25, on_error=on_error, max_superseded=1):
        emit(event=event["id"])
except PollgateError as error:
    emit(raised=error.code, status=error.status)
`,
      { POLLGATE_URL: g.url, POLLGATE_KEY: c.key },
    );
    const takeOver = async () => {
      await waitForHeldPoll(g, c.id);
      const r = await g.json('/v1/events?wait=0', { key: c.key });
      assert.equal(r.status, 200);
    };
    await takeOver();
    await py.waitForLine((l) => l.retry === 'superseded', 'the first takeover retried');
    await takeOver();
    assert.equal(await py.exit(), 0, py.stderr);
    const lines = py.lines();
    assert.deepEqual(lines.map((l) => l.retry ?? l.raised), ['superseded', 'superseded']);
    assert.equal(lines[0].attempt, 1);
    assert.ok(lines[0].delay >= 0 && lines[0].delay <= 0.1, `short backoff: ${lines[0].delay}`);
    assert.deepEqual(lines[1], { raised: 'superseded', status: 409 });
  });

  test('batches(): whole pages, each acked once the body asks for the next', async (t) => {
    const g = await gatewayFor(t);
    const tenant = freshTenant('batches');
    const c = await g.createConsumer({ tenant });
    const evs = await publishNumbered(g, tenant, 1, 5);
    const py = runPython(
      t,
      `
stop = threading.Event()
for page in client.batches(wait=2, limit=2, stop=stop):
    emit(page=[e["id"] for e in page["events"]], committed=client.consumer()["cursor"])
    if page["events"][-1]["id"] == os.environ["LAST"]:
        stop.set()
`,
      { POLLGATE_URL: g.url, POLLGATE_KEY: c.key, LAST: evs[4].id },
    );
    assert.equal(await py.exit(), 0, py.stderr);
    const pages = py.lines();
    assert.deepEqual(pages.map((p) => p.page), [[evs[0].id, evs[1].id], [evs[2].id, evs[3].id], [evs[4].id]]);
    assert.deepEqual(pages.map((p) => p.committed), [c.cursor, evs[1].cursor, evs[3].cursor], 'a page is not acked while the body holds it');
    assert.equal((await consumerOf(g, c.id)).cursor, evs[4].cursor, 'the last page committed on stop');
  });
});

describe('Python client: 410 cursor_expired (FakeClock gateway, retention 1 s)', { skip: SKIP_PYTHON }, () => {
  const clock = new FakeClock();
  let g: TestGateway;
  before(async () => {
    g = await startGateway({ clock, config: { retentionMs: 1000 } });
  });
  after(async () => {
    await g?.close();
  });

  test('raises CursorExpired with earliest, not retried, nothing yielded, nothing moved', async (t) => {
    const tenant = freshTenant('expired');
    const c = await g.createConsumer({ tenant, start: 'earliest' });
    const old = await publishNumbered(g, tenant, 1, 3);
    // Retention ticks on clock timers (at start, then every 30 s of clock time after a run).
    const store = g.gateway.services.store;
    for (let i = 0; (await store.trimmedThrough(tenant)) === 0; i++) {
      assert.ok(i < 200, 'retention trimmed the tenant');
      await clock.advance(5_000);
      await sleep(5);
    }
    await publishNumbered(g, tenant, 4, 1);

    const py = runPython(
      t,
      `
retried = []
try:
    for event in client.events(wait=0, on_error=lambda error, info: retried.append(str(error))):
        emit(event=event["id"])
except CursorExpired as error:
    emit(expired=error.earliest, status=error.status, code=error.code, retried=retried,
         is_pollgate_error=isinstance(error, PollgateError))
try:
    client.poll(wait=0)
except CursorExpired as error:
    emit(poll_expired=error.earliest)
`,
      { POLLGATE_URL: g.url, POLLGATE_KEY: c.key },
    );
    assert.equal(await py.exit(), 0, py.stderr);
    const lines = py.lines();
    assert.deepEqual(eventIds(lines), [], 'nothing is yielded past a gap');
    const expired = lines.find((l) => 'expired' in l);
    assert.deepEqual(expired, { expired: old[2].cursor, status: 410, code: 'cursor_expired', retried: [], is_pollgate_error: true });
    assert.equal(lines.find((l) => 'poll_expired' in l)?.poll_expired, old[2].cursor, 'a single poll raises it too');
    assert.equal((await consumerOf(g, c.id)).cursor, c.cursor, 'nothing moved');
  });
});

describe('Python client: wait negotiation', { skip: SKIP_PYTHON }, () => {
  test('a server with POLLGATE_MAX_WAIT=5s: the client asking wait=25 lowers it to 5 and goes on', async (t) => {
    const g = await gatewayFor(t, { config: { maxWaitMs: 5_000 } });
    const proxy = await proxyFor(t, g.url);
    const tenant = freshTenant('maxwait');
    const c = await g.createConsumer({ tenant });
    const [e1] = await publishNumbered(g, tenant, 1, 1);
    const py = runPython(
      t,
      `
logging.basicConfig(level=logging.WARNING, format="%(message)s")
single = Client(os.environ["POLLGATE_URL"], os.environ["POLLGATE_KEY"]).poll(wait=25)
emit(single=[e["id"] for e in single["events"]])
stop = threading.Event()
retried = []
for event in client.events(wait=25, stop=stop, on_error=lambda error, info: retried.append(str(error))):
    emit(event=event["id"], max_wait=client.max_wait)
    if event["id"] == os.environ["LAST"]:
        stop.set()
emit(ended=True, retried=retried)
`,
      { POLLGATE_URL: proxy.url, POLLGATE_KEY: c.key, LAST: `${tenant}-e2` },
    );
    await py.waitForLine((l) => l.event === e1.id, 'the first event');
    await waitForHeldPoll(g, c.id);
    const [e2] = await publishNumbered(g, tenant, 2, 1);
    assert.equal(await py.exit(), 0, py.stderr);
    const lines = py.lines();
    assert.deepEqual(lines.find((l) => 'single' in l)?.single, [e1.id], 'a single poll(wait=25) adapts too');
    assert.deepEqual(eventIds(lines), [e1.id, e2.id]);
    assert.deepEqual(lines.filter((l) => 'event' in l).map((l) => l.max_wait), [5, 5]);
    assert.deepEqual(lines.find((l) => l.ended)?.retried, [], 'not an error to retry');
    assert.match(py.stderr, /at most 5 s/, 'says so once per client');
    // The single poll's client: 25 refused, then 5. The iterator's: the same, then 5 always.
    const waits = waitsAsked(proxy.seen);
    assert.deepEqual(waits.slice(0, 3), ['25', '5', '25'], `each client refused once: ${waits.join(',')}`);
    assert.ok(waits.length >= 5 && waits.slice(3).every((w) => w === '5'), `then 5, always: ${waits.join(',')}`);
    assert.equal((await consumerOf(g, c.id)).cursor, e2.cursor);
  });

  test('a server that does not send pollgate-max-wait: the maximum is read from the 400 that refuses the wait', async (t) => {
    const g = await gatewayFor(t, { config: { maxWaitMs: 3_000 } });
    const proxy = await proxyFor(t, g.url, { drop: ['pollgate-max-wait'] });
    const tenant = freshTenant('no-header');
    const c = await g.createConsumer({ tenant });
    const [e1] = await publishNumbered(g, tenant, 1, 1);
    const py = runPython(
      t,
      `
stop = threading.Event()
for event in client.events(wait=25, stop=stop):
    emit(event=event["id"], max_wait=client.max_wait)
    stop.set()
client.poll(wait=25)  # nothing left: holds for the lowered wait
`,
      { POLLGATE_URL: proxy.url, POLLGATE_KEY: c.key },
    );
    assert.equal(await py.exit(), 0, py.stderr);
    assert.deepEqual(py.lines(), [{ event: e1.id, max_wait: 3 }]);
    assert.deepEqual(waitsAsked(proxy.seen), ['25', '3', '3'], 'refused once, then the maximum the message names');
  });

  test('the pollgate-max-wait header wins: on the 400 that refuses a wait, and on a 200', async (t) => {
    const g = await gatewayFor(t, { config: { maxWaitMs: 5_000 } });
    // The proxy states a maximum of 2 s on every poll answer (the server's own is 5).
    const proxy = await proxyFor(t, g.url, { addToPolls: { 'pollgate-max-wait': '2' } });
    const tenant = freshTenant('header');
    const a = await g.createConsumer({ tenant });
    const b = await g.createConsumer({ tenant });
    await publishNumbered(g, tenant, 1, 1);
    const script = `
stop = threading.Event()
for event in client.events(wait=float(os.environ["WAIT"]), stop=stop):
    emit(event=event["id"], max_wait=client.max_wait)
    stop.set()
client.poll(wait=float(os.environ["WAIT"]))  # nothing left: holds for the lowered wait
`;
    const refused = runPython(t, script, { POLLGATE_URL: proxy.url, POLLGATE_KEY: a.key, WAIT: '25' });
    const accepted = runPython(t, script, { POLLGATE_URL: proxy.url, POLLGATE_KEY: b.key, WAIT: '4' });
    assert.equal(await refused.exit(), 0, refused.stderr);
    assert.equal(await accepted.exit(), 0, accepted.stderr);
    assert.deepEqual(refused.lines().map((l) => l.max_wait), [2]);
    assert.deepEqual(accepted.lines().map((l) => l.max_wait), [2]);
    assert.deepEqual(waitsAsked(proxy.seen, a.key), ['25', '2', '2'], "refused at 25 (400), then the header's 2, not the message's 5");
    assert.deepEqual(waitsAsked(proxy.seen, b.key), ['4', '2'], 'a 200 that states the maximum lowers later polls');
  });
});

describe('Python client: backoff', { skip: SKIP_PYTHON }, () => {
  test('a gateway stopped and started again on the same data and port: retried with bounded backoff, then goes on', async (t) => {
    const dataDir = tempDir();
    t.after(() => rmSync(dataDir, { recursive: true, force: true }));
    let g = await startGateway({ dataDir });
    let closed = false;
    t.after(async () => {
      if (!closed) await g.close();
    });
    const port = Number(new URL(g.url).port);
    const tenant = freshTenant('restart-gw');
    const c = await g.createConsumer({ tenant });
    const [e1] = await publishNumbered(g, tenant, 1, 1);
    const py = runPython(
      t,
      `
def on_error(error, info):
    emit(retry=type(error).__name__, kind=getattr(error, "kind", None), status=getattr(error, "status", None),
         retry_after=getattr(error, "retry_after", None), attempt=info.attempt, delay=info.delay)
stop = threading.Event()
for event in client.events(wait=2, stop=stop, on_error=on_error, backoff=Backoff(initial=0.05, maximum=0.4)):
    emit(event=event["id"])
    if event["id"] == os.environ["LAST"]:
        stop.set()
emit(ended=True)
`,
      { POLLGATE_URL: g.url, POLLGATE_KEY: c.key, LAST: `${tenant}-e2` },
    );
    await py.waitForLine((l) => l.event === e1.id, 'the first event');
    await waitForHeldPoll(g, c.id);
    closed = true;
    await g.close();
    await py.waitForLine((l) => l.retry !== undefined && l.attempt >= 4, 'four refused attempts in a row');

    g = await startGateway({ dataDir, config: { port } });
    closed = false;
    const [e2] = await publishNumbered(g, tenant, 2, 1);
    assert.equal(await py.exit(), 0, py.stderr);
    const lines = py.lines();
    assert.deepEqual(eventIds(lines), [e1.id, e2.id], 'each once, in order');
    const retries = lines.filter((l) => l.retry !== undefined);
    for (const [i, r] of retries.entries()) {
      // No answer, or the gateway's 503 shutting_down (with Retry-After) while it stops.
      assert.ok(r.retry === 'NetworkError' || (r.retry === 'PollgateError' && r.status === 503), JSON.stringify(r));
      assert.equal(r.attempt, i + 1, 'consecutive attempts');
      const cap = r.retry_after === null ? Math.min(0.4, 0.05 * 2 ** i) : 0.4;
      assert.ok(r.delay >= 0 && r.delay <= cap + 1e-9, `delay ${r.delay} within its cap ${cap}`);
    }
    assert.ok(retries.some((r) => r.kind === 'refused'), 'a refused port');
    assert.equal((await consumerOf(g, c.id)).cursor, e2.cursor);
  });

  test("a proxy's 503 with Retry-After: 1 (not JSON): retried no sooner than Retry-After, then goes on", async (t) => {
    const g = await gatewayFor(t);
    let refusals = 2;
    const proxy = await proxyFor(t, g.url, {
      intercept: (req) =>
        req.url?.startsWith('/v1/events') && refusals-- > 0
          ? { status: 503, headers: { 'content-type': 'text/html', 'retry-after': '1' }, body: '<html><body>Service Unavailable</body></html>' }
          : undefined,
    });
    const tenant = freshTenant('503');
    const c = await g.createConsumer({ tenant });
    const [e1] = await publishNumbered(g, tenant, 1, 1);
    const py = runPython(
      t,
      `
def on_error(error, info):
    emit(retry=error.code, status=error.status, message=error.message, attempt=info.attempt, delay=info.delay)
stop = threading.Event()
for event in client.events(wait=2, stop=stop, on_error=on_error, backoff=Backoff(initial=0.01, maximum=5)):
    emit(event=event["id"])
    stop.set()
`,
      { POLLGATE_URL: proxy.url, POLLGATE_KEY: c.key },
    );
    assert.equal(await py.exit(), 0, py.stderr);
    const lines = py.lines();
    assert.deepEqual(eventIds(lines), [e1.id]);
    const retries = lines.filter((l) => l.retry !== undefined);
    assert.deepEqual(retries.map((r) => [r.retry, r.status, r.attempt]), [['http_503', 503, 1], ['http_503', 503, 2]]);
    assert.match(retries[0].message, /Service Unavailable/);
    for (const r of retries) assert.ok(r.delay >= 1 && r.delay <= 5, `Retry-After raises the delay: ${r.delay}`);
    const polls = proxy.seen.filter((s) => s.url.pathname === '/v1/events');
    for (let i = 1; i < 3; i++) assert.ok(polls[i]!.at - polls[i - 1]!.at >= 950, `poll ${i} waited out Retry-After`);
    assert.equal((await consumerOf(g, c.id)).cursor, e1.cursor);
  });
});

describe('Python forward.py', { skip: SKIP_PYTHON }, () => {
  const SECRET = `whsec_${Buffer.from('a forward secret of 32 bytes....').toString('base64')}`;

  test('POSTs each envelope, signed, in order; a 500 keeps the cursor where it was; acked after the 2xx; SIGTERM exits 0', async (t) => {
    const g = await gatewayFor(t);
    const receiver = await receiverFor(t, () => ({ status: 500, body: 'not yet' }));
    const tenant = freshTenant('fwd');
    const c = await g.createConsumer({ tenant });
    const [e1, e2] = await publishNumbered(g, tenant, 1, 2);
    const fwd = runForward(t, ['--to', `${receiver.url}hook`, '--secret', SECRET, '--header', 'X-Env: test', '--wait', '2', '--limit', '1'], {
      POLLGATE_URL: g.url,
      POLLGATE_KEY: c.key,
    });

    // The receiver fails: the first event is retried in place, and nothing is acked.
    await receiver.waitForCount(3, 10_000);
    assert.deepEqual(receiver.requests.map((r) => r.headers['webhook-id']), [e1.id, e1.id, e1.id], 'retried in place');
    assert.equal((await consumerOf(g, c.id)).cursor, c.cursor, 'not acked before a 2xx');

    // The first event succeeds, the second fails: the cursor moves past the first only.
    receiver.behave((r) => (r.headers['webhook-id'] === e1.id ? { status: 204 } : { status: 500 }));
    await waitFor(() => receiver.requests.filter((r) => r.headers['webhook-id'] === e2.id).length >= 2, 10_000, 'the second event failing twice', 10);
    await waitForCursor(g, c.id, e1.cursor);
    assert.equal((await consumerOf(g, c.id)).cursor, e1.cursor, 'still not past the failing event');

    receiver.behave(() => ({ status: 200 }));
    await waitForCursor(g, c.id, e2.cursor, 10_000);
    const last = receiver.requests.at(-1)!;
    assert.equal(last.headers['webhook-id'], e2.id);

    for (const r of receiver.requests) {
      const expected = r.headers['webhook-id'] === e1.id ? e1 : e2;
      assert.equal(r.method, 'POST');
      assert.equal(r.path, '/hook');
      assert.match(String(r.headers['content-type']), /^application\/json/);
      assert.equal(r.headers['x-env'], 'test');
      assert.deepEqual(JSON.parse(r.body), expected, 'the envelope');
      assert.deepEqual(verify(SECRET, r), expected, 'the Standard Webhooks signature verifies');
    }
    assert.equal(receiver.requests.filter((r) => r.headers['webhook-id'] === e2.id).length >= 3, true);

    fwd.child.kill('SIGTERM');
    assert.equal(await fwd.exit(), 0, fwd.stderr);
    assert.equal(fwd.stdout, '', 'stdout stays empty');
    assert.match(fwd.stderr, /→ HTTP 500 .*retrying in \d+ ms/);
    assert.match(fwd.stderr, new RegExp(`${e2.id} ticket.created cursor ${e2.cursor} attempt \\d+ → 200`));
    assert.equal((await consumerOf(g, c.id)).cursor, e2.cursor);
  });

  test('SIGTERM while an event keeps failing: exits 0 at once and acks nothing', async (t) => {
    const g = await gatewayFor(t);
    const receiver = await receiverFor(t, () => ({ status: 503, headers: { 'retry-after': '30' } }));
    const tenant = freshTenant('fwd-stop');
    const c = await g.createConsumer({ tenant });
    await publishNumbered(g, tenant, 1, 1);
    const fwd = runForward(t, ['--to', receiver.url, '--secret', SECRET, '--wait', '2'], { POLLGATE_URL: g.url, POLLGATE_KEY: c.key });
    await receiver.waitForCount(1, 10_000);
    await waitFor(() => /retrying in/.test(fwd.stderr), 5_000, 'a retry scheduled', 10);
    const t0 = performance.now();
    fwd.child.kill('SIGTERM');
    assert.equal(await fwd.exit(5_000), 0, fwd.stderr);
    assert.ok(performance.now() - t0 < 2_000, 'did not wait out Retry-After');
    assert.match(fwd.stderr, /not delivered, not acked/);
    assert.equal(receiver.requests.length, 1, 'Retry-After: 30 honoured');
    assert.equal((await consumerOf(g, c.id)).cursor, c.cursor, 'nothing acked');
  });

  test('a bad command line exits 2 naming the flag; no key exits 2', async (t) => {
    const bad = runForward(t, ['--to', 'not-a-url', '--key', 'pgk_x', '--secret', SECRET], {});
    assert.equal(await bad.exit(), 2);
    assert.match(bad.stderr, /--to: "not-a-url" is not an absolute http/);
    const noKey = runForward(t, ['--to', 'http://127.0.0.1:9/'], { POLLGATE_KEY: '' });
    assert.equal(await noKey.exit(), 2);
    assert.match(noKey.stderr, /no consumer key: pass --key or set POLLGATE_KEY/);
  });
});

describe('README curl/bash loop', { skip: SKIP_SHELL }, () => {
  async function writeLoop(): Promise<{ loop: string; handler: string }> {
    const loop = join(scriptDir, 'pollgate-loop.sh');
    writeFileSync(loop, SHELL_LOOP, { mode: 0o755 });
    // The handler prints the event, and fails on the event named by FAIL_ON.
    const handler = join(scriptDir, 'handler.sh');
    writeFileSync(
      handler,
      `#!/usr/bin/env bash
event=$(cat)
if [[ $(jq -r .id <<<"$event") == "\${FAIL_ON:-}" ]]; then echo "cannot handle it" >&2; exit 3; fi
printf '%s\\n' "$event"
`,
      { mode: 0o755 },
    );
    return { loop, handler };
  }

  test('a failing handler stops the loop with nothing acked; run again, the page comes again, pages are acked, a 503 is retried', async (t) => {
    // A server whose maximum wait is below the default 25 s: the loop asks for no wait and works.
    const g = await gatewayFor(t, { config: { maxWaitMs: 5_000 } });
    const tenant = freshTenant('curl');
    const c = await g.createConsumer({ tenant });
    const evs = await publishNumbered(g, tenant, 1, 3);
    const { loop, handler } = await writeLoop();

    const failing = spawnChild(t, 'bash', [loop, handler], { POLLGATE_URL: g.url, POLLGATE_KEY: c.key, FAIL_ON: evs[1].id });
    assert.equal(await failing.exit(), 3, failing.stderr);
    assert.deepEqual(failing.lines(), [evs[0]], 'the first event handled, exactly as served');
    assert.equal((await consumerOf(g, c.id)).cursor, c.cursor, 'nothing acked');

    let refusals = 1;
    const proxy = await proxyFor(t, g.url, {
      intercept: (req) => (req.url?.startsWith('/v1/events') && refusals-- > 0 ? { status: 503, body: 'busy' } : undefined),
    });
    const fine = spawnChild(t, 'bash', [loop, handler], { POLLGATE_URL: proxy.url, POLLGATE_KEY: c.key });
    await fine.waitForLine((l) => l.id === evs[2].id, 'the page again');
    await waitForCursor(g, c.id, evs[2].cursor, 10_000); // rides on the next (held) poll
    await waitForHeldPoll(g, c.id);
    const [e4] = await publishNumbered(g, tenant, 4, 1);
    await fine.waitForLine((l) => l.id === e4.id, 'an event published while it holds');
    await waitForCursor(g, c.id, e4.cursor, 10_000);
    assert.deepEqual(fine.lines(), [...evs, e4], 'in order, each once');
    assert.match(fine.stderr, /HTTP 503; retrying/);
    const polls = proxy.seen.filter((s) => s.url.pathname === '/v1/events');
    assert.ok(polls.every((s) => !s.url.searchParams.has('wait')), 'no wait asked: the server picks its own');
    assert.deepEqual(polls.slice(0, 3).map((s) => s.url.searchParams.get('ack')), [null, null, evs[2].cursor], 'the 503 is retried with the same (no) ack');
    process.kill(-fine.child.pid!, 'SIGTERM');
    await fine.exit();
  });

  test('a final answer (401 here; 404, 410 alike) ends the loop with the error on stderr', async (t) => {
    const g = await gatewayFor(t);
    const { loop, handler } = await writeLoop();
    const gone = spawnChild(t, 'bash', [loop, handler], { POLLGATE_URL: g.url, POLLGATE_KEY: 'pgk_not_a_key' });
    assert.equal(await gone.exit(), 1);
    assert.match(gone.stderr, /pollgate: HTTP 401: .*unauthorized/);
  });
});

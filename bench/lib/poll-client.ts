/**
 * The long-poll client of the wake, memory and publish-held benches, run as its own process
 * (spawned by lib/poll-fleet.ts, driven over IPC) so that thousands of held polls are timed
 * neither by the server's event loop nor by the bench's. The same client drives pollgate and
 * nginx/nchan, so the client's cost per answer is the same for both.
 *
 * One raw TCP socket per held poll (lib/raw-http.ts: hand-written HTTP/1.1, keep-alive). On
 * an answer only the arrival time and the raw body are kept; parsing and checking happen
 * after every answer is in, so the client does as little as possible while answers arrive.
 *
 * pollgate: GET /v1/events?wait=W&limit=L[&ack=C] with the consumer's key; the next poll acks
 *   the cursor of the previous answer (as a real consumer does).
 * nchan: GET /sub?id=CHANNEL; the next poll sends If-Modified-Since / If-None-Match from the
 *   previous answer (nchan's way of asking for the message after the last one seen).
 *
 * Ops (each answered with the same id):
 *   init    {port, mode, polls:[{key?|channel?, expect}]}
 *   arm     {waitS, limit, count?}  connect what is not connected, send one poll on each of
 *                              the first `count` slots (default all); the others stay idle
 *   check                      polls answered early (must be 0 before a publish) / pending
 *   fire                       from now on, answers are wake answers (not early)
 *   publish {requests, conns}  send raw publish requests over `conns` connections, pipelined,
 *                              round robin; answers each request's send time, status, answer time
 *   collect {timeoutMs, round} wait for every poll's answer; check each carries exactly its one
 *                              message of this round; answer arrival times (-1: none)
 *   drop                       close every poll connection (releases held polls)
 *   close                      close everything and exit
 * Times are monoMs() (CLOCK_MONOTONIC), comparable across processes.
 */
import { monoMs, RawConnection, type RawResponse } from './raw-http.ts';
import { serveParent } from './ipc.ts';

export type PollMode = 'pollgate' | 'nchan';

export interface PollSpec {
  /** pollgate: the consumer key. */
  key?: string;
  /** nchan: the channel id. */
  channel?: string;
  /** The `c` field every message for this poll carries (its tenant or channel). */
  expect: string;
}

export interface PublishResult {
  sentAt: number[];
  status: number[];
  at: number[];
  sample: string;
}

export interface CollectResult {
  complete: boolean;
  /** Per poll: monoMs() of the answer's last byte; -1 when none came. */
  at: number[];
  statuses: Record<string, number>;
  bad: number;
  badSample: string[];
}

export type Message =
  | { id: number; op: 'init'; port: number; mode: PollMode; polls: PollSpec[]; publishPort?: number | undefined }
  | { id: number; op: 'arm'; waitS: number; limit: number; count?: number }
  | { id: number; op: 'check' }
  | { id: number; op: 'fire' }
  | { id: number; op: 'publish'; requests: string[]; conns: number }
  | { id: number; op: 'collect'; timeoutMs: number; round: number }
  | { id: number; op: 'drop' }
  | { id: number; op: 'close' };

interface Poll {
  spec: PollSpec;
  conn: RawConnection;
  /** pollgate: cursor of the last answer, acked by the next poll. */
  cursor: string | null;
  /** nchan: validators of the last message seen. */
  lastModified: string | null;
  etag: string | null;
  response: RawResponse | null;
}

let polls: Poll[] = [];
/** The polls armed in this round: the first `count` of polls. */
let active: Poll[] = [];
let publishers: RawConnection[] = [];
let port = 0;
/** Where publishes go: the polls' server, or another node of the same deployment. */
let publishPort = 0;
let mode: PollMode = 'pollgate';
let fired = false;
let early: RawResponse[] = [];
let answered = 0;
let onAll: (() => void) | null = null;
/** drop/close: connections are being closed on purpose. */
let closing = false;

const CONNECT_CONCURRENCY = 200;

async function connectAll(conns: RawConnection[]): Promise<void> {
  const todo = conns.filter((c) => !c.connected);
  for (let i = 0; i < todo.length; i += CONNECT_CONCURRENCY) {
    await Promise.all(todo.slice(i, i + CONNECT_CONCURRENCY).map((c) => c.connect()));
  }
}

function onAnswer(poll: Poll, r: RawResponse): void {
  poll.response = r;
  if (!fired) early.push(r);
  answered += 1;
  if (answered === active.length) onAll?.();
}

function pollRequest(p: Poll, waitS: number, limit: number): string {
  if (mode === 'pollgate') {
    const ack = p.cursor ? `&ack=${p.cursor}` : '';
    return `GET /v1/events?wait=${waitS}&limit=${limit}${ack} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${p.spec.key}\r\n\r\n`;
  }
  let headers = '';
  if (p.lastModified) headers += `If-Modified-Since: ${p.lastModified}\r\n`;
  if (p.etag) headers += `If-None-Match: ${p.etag}\r\n`;
  return `GET /sub?id=${p.spec.channel} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`;
}

async function arm(waitS: number, limit: number, count: number): Promise<number> {
  active = polls.slice(0, count);
  fired = false;
  early = [];
  answered = 0;
  // Each batch sends its polls as soon as it is connected: a socket connected long before its
  // request (10,000 of them on a loaded machine take many seconds) would meet the server's
  // headers timeout, and one idle since the last round its keep-alive timeout.
  for (let i = 0; i < active.length; i += CONNECT_CONCURRENCY) {
    const batch = active.slice(i, i + CONNECT_CONCURRENCY);
    await connectAll(batch.map((p) => p.conn));
    for (const p of batch) {
      p.response = null;
      sendPoll(p, pollRequest(p, waitS, limit), 3);
    }
  }
  return polls.length;
}

/**
 * Sends a poll; one whose connection the server closed as it went out (an idle keep-alive
 * socket reaching its timeout just then) is sent again on a new connection, before the
 * publish only: it never reached the server, so it is no answer.
 */
function sendPoll(p: Poll, request: string, retries: number): void {
  p.conn.send(request, (r) => {
    if (r.status === 0 && !fired && retries > 0 && !closing) {
      p.conn.connect().then(
        () => sendPoll(p, request, retries - 1),
        () => onAnswer(p, r),
      );
      return;
    }
    onAnswer(p, r);
  });
}

async function publish(requests: string[], conns: number): Promise<PublishResult> {
  while (publishers.length < conns) publishers.push(new RawConnection(publishPort));
  const use = publishers.slice(0, conns);
  await connectAll(use);
  const sentAt: number[] = new Array(requests.length);
  const status: number[] = new Array(requests.length);
  const at: number[] = new Array(requests.length);
  let sample = '';
  await new Promise<void>((resolve) => {
    let left = requests.length;
    const send = (req: string, i: number, conn: RawConnection, retries: number) =>
      conn.send(req, (r) => {
        // The server closed the (idle keep-alive) connection as the request went out, so it
        // never read it: send it again on a new connection.
        if (r.status === 0 && retries > 0 && !closing) {
          const fresh = new RawConnection(publishPort);
          publishers.push(fresh);
          fresh.connect().then(
            () => send(req, i, fresh, retries - 1),
            () => send(req, i, fresh, 0),
          );
          return;
        }
        status[i] = r.status;
        at[i] = r.at;
        if (r.status < 200 || r.status > 299) sample ||= `${r.status} ${r.body.slice(0, 300)}`;
        if (--left === 0) resolve();
      });
    requests.forEach((req, i) => {
      sentAt[i] = monoMs();
      send(req, i, use[i % use.length]!, 2);
    });
  });
  return { sentAt, status, at, sample };
}

/** Is this answer exactly the one message of `round` for this poll? Updates its cursor/validators. */
function checkAnswer(p: Poll, r: RawResponse, round: number): string | null {
  if (r.status !== 200) return `status ${r.status}: ${r.body.slice(0, 200)}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.body);
  } catch {
    return `not JSON: ${r.body.slice(0, 200)}`;
  }
  let data: { c?: unknown; r?: unknown } | undefined;
  if (mode === 'pollgate') {
    const page = parsed as { events: Array<{ data: { c?: unknown; r?: unknown } }>; cursor: string };
    p.cursor = page.cursor;
    if (page.events.length !== 1) return `${page.events.length} events (want exactly 1)`;
    data = page.events[0]!.data;
  } else {
    p.lastModified = r.headers['last-modified'] ?? null;
    p.etag = r.headers.etag ?? null;
    data = parsed as { c?: unknown; r?: unknown };
  }
  if (data?.c !== p.spec.expect || data.r !== round) return `got ${JSON.stringify(data)}, want c=${p.spec.expect} r=${round}`;
  return null;
}

async function collect(timeoutMs: number, round: number): Promise<CollectResult> {
  const complete = await new Promise<boolean>((resolve) => {
    if (answered === active.length) return resolve(true);
    const timer = setTimeout(() => resolve(false), timeoutMs);
    onAll = () => {
      clearTimeout(timer);
      resolve(true);
    };
  });
  onAll = null;
  const at: number[] = [];
  const statuses: Record<string, number> = {};
  const badSample: string[] = [];
  let bad = 0;
  for (const p of active) {
    const r = p.response;
    if (!r) {
      at.push(-1);
      continue;
    }
    at.push(r.at);
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    const problem = checkAnswer(p, r, round);
    if (problem) {
      bad += 1;
      if (badSample.length < 3) badSample.push(problem);
    }
  }
  return { complete, at, statuses, bad, badSample };
}

async function handle(msg: Message): Promise<unknown> {
  switch (msg.op) {
    case 'init':
      port = msg.port;
      publishPort = msg.publishPort ?? msg.port;
      mode = msg.mode;
      polls = msg.polls.map((spec) => ({
        spec,
        conn: new RawConnection(port, mode === 'nchan' ? ['last-modified', 'etag'] : []),
        cursor: null,
        lastModified: null,
        etag: null,
        response: null,
      }));
      return { polls: polls.length };
    case 'arm':
      return { sent: await arm(msg.waitS, msg.limit, msg.count ?? polls.length) };
    case 'check':
      return {
        early: early.length,
        earlySample: early.slice(0, 3).map((r) => `${r.status} ${r.body.slice(0, 200)}`),
        pending: active.filter((p) => !p.response).length,
      };
    case 'fire':
      fired = true;
      return {};
    case 'publish':
      return publish(msg.requests, msg.conns);
    case 'collect':
      return collect(msg.timeoutMs, msg.round);
    case 'drop':
      closing = true;
      for (const p of polls) p.conn.close();
      closing = false;
      active = [];
      answered = 0;
      return {};
    case 'close':
      closing = true;
      for (const p of polls) p.conn.close();
      for (const c of publishers) c.close();
      setImmediate(() => process.exit(0));
      return {};
  }
}

serveParent(handle);

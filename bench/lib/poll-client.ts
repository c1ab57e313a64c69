/**
 * The wake bench's client, run as its own process (forked by bench/wake.ts, driven over IPC)
 * so that 1,000 held polls are not timed by the event loop of the server or of the bench.
 *
 * One raw TCP socket per consumer (node:net), hand-written HTTP/1.1 GETs with keep-alive,
 * and a parser that reads only the status line and Content-Length. The publish that wakes
 * them is sent from here too, so both ends of every latency come from one clock:
 * latency = (poll response fully received) − (publish request written to its socket).
 *
 * Ops (each answered with the same id):
 *   init  {port, keys, adminKey}   one connection slot per key
 *   arm   {waitS, limit}           send one poll per consumer (ack= the cursor its last answer returned)
 *   check                          how many polls answered early (must be 0 before fire) / are pending
 *   fire  {body, timeoutMs}        publish, then wait for every poll's answer; returns latencies
 *   close                          close the sockets and exit
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';

interface Response {
  status: number;
  body: string;
  /** performance.now() when the last byte of the body arrived. */
  at: number;
}

/** One keep-alive connection carrying one request at a time. */
class RawConnection {
  private socket: net.Socket | null = null;
  private buffer: Buffer = Buffer.alloc(0);
  private onResponse: ((r: Response) => void) | null = null;

  constructor(private readonly port: number) {}

  get connected(): boolean {
    return this.socket !== null;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: this.port });
      socket.setNoDelay(true);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve();
      });
      socket.once('error', reject);
      socket.on('error', () => {}); // reported through 'close'
      socket.on('data', (chunk: Buffer) => this.onData(chunk));
      socket.on('close', () => {
        if (this.socket === socket) this.socket = null;
        this.buffer = Buffer.alloc(0);
        const pending = this.onResponse;
        this.onResponse = null;
        pending?.({ status: 0, body: 'connection closed', at: performance.now() });
      });
      this.socket = socket;
    });
  }

  /** Writes the request; cb gets the response (status 0 if the connection dropped). */
  send(request: string, cb: (r: Response) => void): void {
    if (!this.socket) throw new Error('not connected');
    this.onResponse = cb;
    this.socket.write(request);
  }

  close(): void {
    this.socket?.destroy();
    this.socket = null;
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const headerEnd = this.buffer.indexOf('\r\n\r\n');
    if (headerEnd < 0) return;
    const head = this.buffer.toString('latin1', 0, headerEnd);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!length) {
      // Minimal on purpose: pollgate answers with Content-Length; anything else is a bug here.
      this.finish({ status: -1, body: `no content-length in: ${head.slice(0, 200)}`, at: performance.now() }, this.buffer.length);
      return;
    }
    const total = headerEnd + 4 + Number(length[1]);
    if (this.buffer.length < total) return;
    const at = performance.now();
    const status = Number(head.slice(9, 12));
    this.finish({ status, body: this.buffer.toString('utf8', headerEnd + 4, total), at }, total);
  }

  private finish(r: Response, consumed: number): void {
    this.buffer = this.buffer.subarray(consumed);
    const cb = this.onResponse;
    this.onResponse = null;
    cb?.(r);
  }
}

interface Poll {
  key: string;
  conn: RawConnection;
  /** The cursor of the last answer: acked by the next poll. */
  cursor: string | null;
  response: Response | null;
}

type Message =
  | { id: number; op: 'init'; port: number; keys: string[]; adminKey: string }
  | { id: number; op: 'arm'; waitS: number; limit: number }
  | { id: number; op: 'check' }
  | { id: number; op: 'fire'; body: string; timeoutMs: number }
  | { id: number; op: 'close' };

let polls: Poll[] = [];
let publisher: RawConnection | null = null;
let port = 0;
let adminKey = '';
let phase: 'idle' | 'armed' | 'fired' = 'idle';
let earlyResponses: Response[] = [];
let allAnswered: (() => void) | null = null;
let answered = 0;

const CONNECT_CONCURRENCY = 100;

async function connectAll(conns: RawConnection[]): Promise<void> {
  const todo = conns.filter((c) => !c.connected);
  for (let i = 0; i < todo.length; i += CONNECT_CONCURRENCY) {
    await Promise.all(todo.slice(i, i + CONNECT_CONCURRENCY).map((c) => c.connect()));
  }
}

function onPollResponse(poll: Poll, r: Response): void {
  poll.response = r;
  if (phase !== 'fired') earlyResponses.push(r);
  answered += 1;
  if (answered === polls.length) allAnswered?.();
}

async function arm(waitS: number, limit: number): Promise<number> {
  await connectAll(polls.map((p) => p.conn));
  phase = 'armed';
  earlyResponses = [];
  answered = 0;
  for (const poll of polls) {
    poll.response = null;
    const ack = poll.cursor ? `&ack=${poll.cursor}` : '';
    poll.conn.send(
      `GET /v1/events?wait=${waitS}&limit=${limit}${ack} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${poll.key}\r\n\r\n`,
      (r) => onPollResponse(poll, r),
    );
  }
  return polls.length;
}

async function fire(body: string, timeoutMs: number) {
  if (!publisher) publisher = new RawConnection(port);
  if (!publisher.connected) await publisher.connect();
  const everyone = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    allAnswered = () => {
      clearTimeout(timer);
      resolve(true);
    };
    if (answered === polls.length) allAnswered();
  });
  const request =
    `POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${adminKey}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  phase = 'fired';
  let sentAt = 0;
  const published = new Promise<Response>((resolve) => {
    sentAt = performance.now();
    publisher!.send(request, resolve);
  });
  const publishResponse = await published;
  const complete = await everyone;
  allAnswered = null;
  phase = 'idle';

  const latenciesMs: number[] = [];
  const statuses: Record<string, number> = {};
  const eventCounts: Record<string, number> = {};
  const tenants = new Set<string>();
  let missing = 0;
  for (const poll of polls) {
    const r = poll.response;
    if (!r) {
      missing += 1;
      continue;
    }
    latenciesMs.push(r.at - sentAt);
    statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.status !== 200) continue;
    const parsed = JSON.parse(r.body) as { events: Array<{ tenant: string }>; cursor: string };
    poll.cursor = parsed.cursor;
    eventCounts[parsed.events.length] = (eventCounts[parsed.events.length] ?? 0) + 1;
    for (const e of parsed.events) tenants.add(e.tenant);
  }
  return {
    complete,
    missing,
    latenciesMs,
    statuses,
    eventCounts,
    distinctTenants: tenants.size,
    publishStatus: publishResponse.status,
    publishMs: publishResponse.at - sentAt,
  };
}

async function handle(msg: Message): Promise<unknown> {
  switch (msg.op) {
    case 'init':
      port = msg.port;
      adminKey = msg.adminKey;
      polls = msg.keys.map((key) => ({ key, conn: new RawConnection(port), cursor: null, response: null }));
      return { polls: polls.length };
    case 'arm':
      return { sent: await arm(msg.waitS, msg.limit) };
    case 'check':
      return {
        early: earlyResponses.length,
        earlySample: earlyResponses.slice(0, 3).map((r) => `${r.status} ${r.body.slice(0, 200)}`),
        pending: polls.filter((p) => !p.response).length,
      };
    case 'fire':
      return fire(msg.body, msg.timeoutMs);
    case 'close':
      for (const p of polls) p.conn.close();
      publisher?.close();
      setImmediate(() => process.exit(0));
      return {};
  }
}

process.on('message', (msg: Message) => {
  handle(msg).then(
    (result) => process.send!({ id: msg.id, ok: true, result }),
    (error: Error) => process.send!({ id: msg.id, ok: false, error: error.stack ?? String(error) }),
  );
});
// The parent going away ends us too.
process.on('disconnect', () => process.exit(0));

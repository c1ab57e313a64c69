/**
 * Process-level test support: the real server (`node --import tsx src/main.ts`, or `npm start`)
 * as a child process on a temp data directory, configured by POLLGATE_* variables.
 *
 * - startServer() spawns it, collects stdout/stderr, waits for the JSON log line
 *   "pollgate listening" and parses the bound port from it (POLLGATE_PORT=0).
 * - Every wait has a timeout, so a test can never hang on a child; a child that does not
 *   become ready in time is killed and the start fails with its output.
 * - Children run in their own process group (detached), so killGroup() also reaches what
 *   `npm start` spawned below itself. killAllServers() (call it in `after`) and a last-resort
 *   'exit' hook SIGKILL every child still alive.
 * - request() is a small node:http client with a hard timeout (keep-alive agents optional).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTimeout } from './wait.ts';

import { databaseUrlFor } from './engine.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TEST_ADMIN_KEY = 'pga_process_test_admin_key_0123456789abcdef';
/** Generous: process start on a loaded 2-core machine (tsx compiles on the fly). */
export const START_TIMEOUT_MS = 20_000;

export function tempDir(prefix = 'pollgate-proc-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** Data directory; default: a fresh temp directory. */
  dataDir?: string;
  /** Extra or overriding variables; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Command-line flags after the entry point. */
  args?: string[];
  /** POLLGATE_ADMIN_KEY; default TEST_ADMIN_KEY; null leaves it unset. */
  adminKey?: string | null;
  /** Run through `npm start` (cwd = repository root) instead of node directly. */
  npm?: boolean;
}

/** Live children, for killAllServers() and the exit hook. */
const live = new Set<ChildProcess>();

function buildEnv(dataDir: string, opts: SpawnOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Nothing of the test runner's own context or of the developer's POLLGATE_* settings leaks in.
    if (k.startsWith('POLLGATE_') || k.startsWith('NODE_TEST') || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  env.POLLGATE_DATA_DIR = dataDir;
  env.POLLGATE_PORT = '0';
  env.POLLGATE_HOST = '127.0.0.1';
  env.POLLGATE_LOG_LEVEL = 'info';
  const databaseUrl = databaseUrlFor(dataDir);
  if (databaseUrl) env.POLLGATE_DATABASE_URL = databaseUrl;
  const adminKey = opts.adminKey === undefined ? TEST_ADMIN_KEY : opts.adminKey;
  if (adminKey !== null) env.POLLGATE_ADMIN_KEY = adminKey;
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export class ServerProcess {
  readonly child: ChildProcess;
  readonly dataDir: string;
  readonly exited: Promise<ExitInfo>;
  private out: Buffer[] = [];
  private err: Buffer[] = [];
  private exitInfo: ExitInfo | null = null;
  private listeners = new Set<() => void>();
  port = 0;

  constructor(dataDir: string, opts: SpawnOptions) {
    this.dataDir = dataDir;
    const env = buildEnv(dataDir, opts);
    const args = opts.args ?? [];
    this.child = opts.npm
      ? spawn('npm', ['start', ...(args.length ? ['--', ...args] : [])], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this.child);
    this.child.stdout!.on('data', (b: Buffer) => {
      this.out.push(b);
      this.notify();
    });
    this.child.stderr!.on('data', (b: Buffer) => {
      this.err.push(b);
      this.notify();
    });
    this.exited = new Promise<ExitInfo>((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this.child);
        // 'exit' may precede the last output chunks; give the pipes a moment to drain.
        setTimeout(() => {
          this.notify();
          resolve({ code, signal });
        }, 50);
      });
      this.child.once('error', () => {
        this.exitInfo = { code: null, signal: null };
        live.delete(this.child);
        this.notify();
        resolve({ code: null, signal: null });
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get stdout(): string {
    return Buffer.concat(this.out).toString('utf8');
  }
  get stderr(): string {
    return Buffer.concat(this.err).toString('utf8');
  }
  get hasExited(): boolean {
    return this.exitInfo !== null;
  }
  /** Both streams, for failure messages. */
  output(): string {
    return `--- stdout ---\n${this.stdout}\n--- stderr ---\n${this.stderr}`;
  }

  /** The JSON log lines of stdout (non-JSON lines, e.g. npm's banner, are skipped). */
  logLines(): Array<Record<string, any>> {
    const lines: Array<Record<string, any>> = [];
    for (const line of this.stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        lines.push(JSON.parse(line));
      } catch {
        // a partial last line
      }
    }
    return lines;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  /** Resolves once test() holds for the output so far; rejects on exit first or timeout. */
  waitFor<T>(what: string, test: () => T | undefined, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const v = test();
        if (v !== undefined) return done(() => resolve(v));
        if (this.exitInfo) {
          return done(() => reject(new Error(`server exited (${JSON.stringify(this.exitInfo)}) before ${what}\n${this.output()}`)));
        }
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.output()}`))),
        timeoutMs,
      );
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        f();
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Waits for a log line with this msg; answers the parsed line. */
  waitForLog(msg: string, timeoutMs = START_TIMEOUT_MS): Promise<Record<string, any>> {
    return this.waitFor(`log "${msg}"`, () => this.logLines().find((l) => l.msg === msg), timeoutMs);
  }

  async waitListening(timeoutMs = START_TIMEOUT_MS): Promise<number> {
    const line = await this.waitForLog('pollgate listening', timeoutMs);
    if (typeof line.port !== 'number' || line.port <= 0) throw new Error(`no port in ${JSON.stringify(line)}`);
    this.port = line.port;
    return this.port;
  }

  /** Closes our end of the child's stdout pipe: its later writes there fail (EPIPE). */
  closeStdout(): void {
    this.child.stdout?.destroy();
  }

  /** Signals the child itself (for `npm start`, the npm process only). */
  signal(sig: NodeJS.Signals): void {
    if (this.exitInfo) return;
    try {
      this.child.kill(sig);
    } catch {
      // already gone
    }
  }

  /** Signals the child's whole process group (everything it spawned). */
  killGroup(sig: NodeJS.Signals = 'SIGKILL'): void {
    try {
      process.kill(-this.pid, sig);
    } catch {
      // group already empty
    }
  }

  /** True while any process of the child's group is alive (e.g. an orphaned grandchild). */
  groupAlive(): boolean {
    try {
      process.kill(-this.pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** Waits for the exit; rejects after timeoutMs (the child keeps running). */
  waitExit(timeoutMs = 10_000): Promise<ExitInfo> {
    return withTimeout(this.exited, timeoutMs, `server pid ${this.pid} did not exit within ${timeoutMs} ms`).catch((error: Error) => {
      throw new Error(`${error.message}\n${this.output()}`);
    });
  }

  /** SIGKILL (the process group) and wait for the exit. */
  async kill(): Promise<ExitInfo> {
    this.killGroup('SIGKILL');
    return this.waitExit(10_000);
  }

  /** SIGTERM, wait up to timeoutMs, then SIGKILL the group. Answers the exit. */
  async stop(timeoutMs = 10_000): Promise<ExitInfo> {
    if (this.exitInfo) return this.exitInfo;
    this.signal('SIGTERM');
    try {
      return await this.waitExit(timeoutMs);
    } catch {
      return this.kill();
    } finally {
      this.killGroup('SIGKILL');
    }
  }
}

/** Spawns the server without waiting for it. */
export function spawnServer(opts: SpawnOptions = {}): ServerProcess {
  return new ServerProcess(opts.dataDir ?? tempDir(), opts);
}

/** Spawns the server and waits until it listens; on failure kills it and rethrows. */
export async function startServer(opts: SpawnOptions = {}, timeoutMs = START_TIMEOUT_MS): Promise<ServerProcess> {
  const server = spawnServer(opts);
  try {
    await server.waitListening(timeoutMs);
    return server;
  } catch (error) {
    await server.kill().catch(() => {});
    throw error;
  }
}

/** Runs the server expecting it to exit by itself (bad config); kills it after timeoutMs. */
export async function runToExit(opts: SpawnOptions = {}, timeoutMs = START_TIMEOUT_MS): Promise<ExitInfo & { stdout: string; stderr: string; listened: boolean }> {
  const server = spawnServer(opts);
  let info: ExitInfo;
  try {
    info = await server.waitExit(timeoutMs);
  } catch {
    info = await server.kill();
  }
  const listened = server.logLines().some((l) => l.msg === 'pollgate listening');
  return { ...info, stdout: server.stdout, stderr: server.stderr, listened };
}

/** SIGKILLs every child still alive (their whole groups). For `after` hooks. */
export async function killAllServers(): Promise<void> {
  const children = [...live];
  for (const child of children) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await withTimeout(
    Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r))))),
    5_000,
    'children did not exit after SIGKILL',
  ).catch(() => {});
}

process.once('exit', () => {
  for (const child of live) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

// ---------------------------------------------------------------------------------------
// HTTP

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  body: any;
}

export interface RequestOptions {
  method?: string;
  /** Bearer key; default TEST_ADMIN_KEY; null sends none. */
  key?: string | null;
  /** JSON-encoded as the body. */
  body?: unknown;
  agent?: http.Agent;
  headers?: Record<string, string>;
  /** Hard limit for the whole exchange (default 15 s). */
  timeoutMs?: number;
}

/** One HTTP exchange over node:http; rejects on connection errors and after timeoutMs. */
export function request(base: string, path: string, opts: RequestOptions = {}): Promise<Reply> {
  const url = new URL(path, base);
  const headers: Record<string, string> = { ...opts.headers };
  const key = opts.key === undefined ? TEST_ADMIN_KEY : opts.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  let payload: Buffer | undefined;
  if (opts.body !== undefined) {
    payload = Buffer.from(JSON.stringify(opts.body));
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(payload.length);
  }
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: opts.method ?? (payload ? 'POST' : 'GET'),
        headers,
        agent: opts.agent ?? false,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('aborted', () => reject(new Error('response aborted')));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: any = null;
          try {
            body = text ? JSON.parse(text) : null;
          } catch {
            body = text;
          }
          resolve({ status: res.statusCode!, headers: res.headers, text, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Answers whether a TCP connection to the port is accepted. */
export function canConnect(port: number, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function createConsumer(base: string, input: Record<string, unknown>, key: string = TEST_ADMIN_KEY): Promise<any> {
  const r = await request(base, '/v1/consumers', { body: input, key });
  if (r.status !== 201) throw new Error(`create consumer: ${r.status} ${r.text}`);
  return r.body;
}

/**
 * Every event of a tenant, in log order: a fresh consumer from "earliest" that polls pages of
 * up to 1000 and acks each page with the next poll, until a poll comes back empty.
 */
export async function readAll(base: string, tenant: string, key: string = TEST_ADMIN_KEY): Promise<any[]> {
  const consumer = await createConsumer(base, { tenant, start: 'earliest', name: `reader-${Date.now()}-${Math.random().toString(36).slice(2, 8)}` }, key);
  const events: any[] = [];
  let ackTo: string | undefined;
  for (let page = 0; page < 10_000; page++) {
    const q = `wait=0.2&limit=1000${ackTo ? `&ack=${encodeURIComponent(ackTo)}` : ''}`;
    const r = await request(base, `/v1/events?${q}`, { key: consumer.key });
    if (r.status !== 200) throw new Error(`poll: ${r.status} ${r.text}`);
    events.push(...r.body.events);
    ackTo = r.body.cursor;
    if (r.body.events.length === 0 && !r.body.more) break;
  }
  return events;
}

/** Every regular file under dir (recursively). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

/** The files under dir whose bytes contain the text (UTF-8 or UTF-16LE). */
export function filesContaining(dir: string, text: string): string[] {
  const utf8 = Buffer.from(text, 'utf8');
  const utf16 = Buffer.from(text, 'utf16le');
  return filesUnder(dir).filter((f) => {
    const bytes = readFileSync(f);
    return bytes.includes(utf8) || bytes.includes(utf16);
  });
}

/** Orders two cursors of this gateway (opaque to clients; totally ordered by the contract). */
export function compareCursors(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The servers under test, each a separate child process on 127.0.0.1 with a port the OS picks:
 * pollgate itself (src/main.ts, fresh data dir) and the baselines (bare Hono, plain node:http).
 *
 * pollgate runs with POLLGATE_LOG_LEVEL=warn unless BENCH_LOG_LEVEL says otherwise (info, the
 * server's default, writes one log line per request: `BENCH_LOG_LEVEL=info` measures that).
 * Its "pollgate listening" line (with the bound port, as POLLGATE_PORT=0 needs) is an info
 * line too, so at warn it never comes; the port is then read from /proc (the child's one
 * listening TCP socket), whichever is first.
 */
import { cpSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, removeTempDir, ROOT, spawnNode, type Child } from './proc.ts';

/** A fixed admin key: the benches publish and create consumers with it. Not a secret. */
export const ADMIN_KEY = 'pga_bench_admin_key_0123456789abcdefghijklmnopqrstuv';

export interface RunningServer {
  name: string;
  port: number;
  /** http://127.0.0.1:port */
  url: string;
  child: Child;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface PollgateServer extends RunningServer {
  dataDir: string;
  /**
   * Where --cpu-prof writes when the server exits, if profiling was asked for. One file per
   * thread (tsx runs its module loader in a worker thread); the main thread's is the big one.
   */
  profileDir: string | null;
  /** From spawn to the "listening" line: the profile's start-up part, left out of its summary. */
  startupMs: number;
}

const START_TIMEOUT_MS = 30_000;

function portOf(line: Record<string, unknown>): number {
  const port = line.port;
  if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0) throw new Error(`no port in ${JSON.stringify(line)}`);
  return port;
}

/** TCP ports the process listens on, from /proc/<pid>/fd and /proc/<pid>/net/tcp{,6}. */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return [];
  }
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // sl local_address rem_address st … inode (column 10); st 0A is LISTEN.
      if (cols.length < 10 || cols[3] !== '0A' || !inodes.has(cols[9]!)) continue;
      ports.push(Number.parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** The bound port: from the child's JSON "listening" line or, failing that, from /proc. */
async function boundPort(child: Child, msg: string, timeoutMs: number): Promise<number> {
  let done = false;
  const fromLine = child.waitForJson((l) => l.msg === msg, timeoutMs).then(portOf);
  const fromProc = (async () => {
    const deadline = Date.now() + timeoutMs;
    while (!done && Date.now() < deadline) {
      const ports = child.proc.pid === undefined ? [] : listeningPorts(child.proc.pid);
      if (ports.length === 1) return ports[0]!;
      await new Promise((r) => setTimeout(r, 50));
    }
    return new Promise<number>(() => {}); // leave it to the line (or its timeout)
  })();
  try {
    const port = await Promise.race([fromLine, fromProc]);
    // Listening is not yet serving: wait for a health answer.
    for (const deadline = Date.now() + timeoutMs; ; ) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        await res.arrayBuffer();
        return port;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } finally {
    done = true;
    fromLine.catch(() => {});
  }
}

export interface StartPollgateOptions {
  profileDir?: string | undefined;
  profileName?: string;
  /** Start from a copy of this data directory (a template with consumers in it). */
  template?: string;
  /** Extra POLLGATE_* settings. */
  env?: Record<string, string>;
  /** Keep the data directory when the server stops (to use it as a template). */
  keepDataDir?: boolean;
  /** Run the pollgate of another checkout (its src/main.ts), for A/B runs of two versions. */
  root?: string;
}

export async function startPollgate(opts: StartPollgateOptions = {}): Promise<PollgateServer> {
  const dataDir = makeTempDir('pollgate-bench');
  if (opts.template) cpSync(opts.template, dataDir, { recursive: true });
  const nodeArgs: string[] = [];
  let profileDir: string | null = null;
  if (opts.profileDir) {
    // No --cpu-prof-name: with one fixed name the loader thread's profile overwrites the main one.
    profileDir = join(opts.profileDir, opts.profileName ?? `pollgate-${Date.now()}`);
    mkdirSync(profileDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  }
  const spawnedAt = Date.now();
  const child = spawnNode(opts.root ? join(opts.root, 'src/main.ts') : 'src/main.ts', {
    nodeArgs,
    env: {
      ...process.env,
      POLLGATE_DATA_DIR: dataDir,
      POLLGATE_HOST: '127.0.0.1',
      POLLGATE_PORT: '0',
      POLLGATE_ADMIN_KEY: ADMIN_KEY,
      POLLGATE_LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
      ...opts.env,
    },
  });
  let port: number;
  try {
    port = await boundPort(child, 'pollgate listening', START_TIMEOUT_MS);
  } catch (error) {
    await child.stop(2000);
    throw new Error(`pollgate did not start: ${(error as Error).message}`);
  }
  const startupMs = Date.now() - spawnedAt;
  return {
    name: 'pollgate',
    startupMs,
    port,
    url: `http://127.0.0.1:${port}`,
    child,
    dataDir,
    profileDir,
    async stop() {
      const code = await child.stop();
      if (!opts.keepDataDir) removeTempDir(dataDir);
      return code;
    },
  };
}

export interface BaselineServer extends RunningServer {
  profileDir: string | null;
  startupMs: number;
}

/** The baselines: bare Hono (pollgate's HTTP stack, no work) and plain node:http (no framework, an in-memory log). */
const BASELINES = {
  'bare-hono': { script: 'bench/baseline/bare-hono.ts', title: 'the bare Hono baseline' },
  'plain-node': { script: 'bench/baseline/plain-node.ts', title: 'the plain node:http baseline' },
} as const;
export type BaselineKind = keyof typeof BASELINES;

export async function startBaseline(
  opts: { kind?: BaselineKind; profileDir?: string | undefined; profileName?: string } = {},
): Promise<BaselineServer> {
  const kind = opts.kind ?? 'bare-hono';
  const nodeArgs: string[] = [];
  let profileDir: string | null = null;
  if (opts.profileDir) {
    profileDir = join(opts.profileDir, opts.profileName ?? `${kind}-${Date.now()}`);
    mkdirSync(profileDir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  }
  const spawnedAt = Date.now();
  const child = spawnNode(BASELINES[kind].script, { nodeArgs });
  let port: number;
  try {
    port = await boundPort(child, 'baseline listening', START_TIMEOUT_MS);
  } catch (error) {
    await child.stop(2000);
    throw new Error(`${BASELINES[kind].title} did not start: ${(error as Error).message}`);
  }
  const startupMs = Date.now() - spawnedAt;
  return { name: kind, port, url: `http://127.0.0.1:${port}`, child, profileDir, startupMs, stop: () => child.stop() };
}

/** Events ever appended (all tenants): pollgate_events_appended of /metrics (admin key; /readyz does not tell). */
export async function readHead(server: RunningServer): Promise<number> {
  const appended = (await readMetrics(server))?.get('pollgate_events_appended');
  if (appended === undefined) throw new Error(`${server.url}/metrics has no pollgate_events_appended`);
  return appended;
}

/** An admin call with a JSON body; throws unless the status is the expected one. */
export async function adminJson<T>(server: RunningServer, method: string, path: string, body: unknown, expect: number): Promise<T> {
  const init: RequestInit = {
    method,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
  };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(`${server.url}${path}`, init);
  const text = await res.text();
  if (res.status !== expect) throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

export { ROOT };

/**
 * Unlabelled samples from pollgate's /metrics (admin key), or null when the server has no
 * /metrics. Used for the writer's commit group size and commit duration during a run.
 */
export async function readMetrics(server: RunningServer): Promise<Map<string, number> | null> {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const text = await res.text();
  if (res.status !== 200) return null;
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*) ([-+0-9.eE]+|NaN)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/**
 * wrk, the load generator for request throughput (a Node client saturates before the server
 * does on 2 cores). ensureWrk() installs Debian's wrk when it is missing and we are root;
 * runWrk() runs one bounded load (duration plus a hard kill) with bench/lib/post.lua and
 * returns what its done() hook printed.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, spawnChild } from './proc.ts';

export type WrkAvailability = { ok: true; version: string } | { ok: false; reason: string };

let cached: WrkAvailability | null = null;

function wrkVersion(): string | null {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (r.error) return null;
  // wrk --version prints its banner and usage and exits 1.
  const first = `${r.stdout}${r.stderr}`.split('\n')[0]?.trim() ?? '';
  return first.startsWith('wrk') ? first : null;
}

/** Finds wrk, or installs it with apt-get (root only). Never throws. */
export function ensureWrk(): WrkAvailability {
  if (cached) return cached;
  let version = wrkVersion();
  if (!version) {
    if (process.getuid?.() !== 0) {
      cached = { ok: false, reason: 'wrk is not installed and we are not root (apt-get install wrk)' };
      return cached;
    }
    process.stderr.write('bench: wrk not found; installing it with apt-get …\n');
    const opts = { stdio: 'inherit' as const, timeout: 180_000, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
    const update = spawnSync('apt-get', ['update', '-qq'], opts);
    const install = update.status === 0 ? spawnSync('apt-get', ['install', '-y', '-qq', 'wrk'], opts) : update;
    version = wrkVersion();
    if (!version) {
      cached = { ok: false, reason: `wrk could not be installed (apt-get exit ${install.status ?? install.error?.message})` };
      return cached;
    }
  }
  cached = { ok: true, version };
  return cached;
}

export interface WrkOptions {
  /** Base URL, http://127.0.0.1:port */
  url: string;
  path: string;
  /** A file with one request body per line (see post.lua). */
  bodiesFile: string;
  auth?: string | undefined;
  connections: number;
  threads: number;
  durationS: number;
  /** wrk's per-request timeout (counted as an error, the request is not abandoned). */
  timeoutS?: number;
}

export interface WrkResult {
  requests: number;
  durationS: number;
  requestsPerS: number;
  /** Responses with status >= 400 (wrk's "Non-2xx or 3xx", which counts > 399). */
  statusErrors: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
}

const SCRIPT = join(ROOT, 'bench/lib/post.lua');

export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    '-t', String(o.threads),
    '-c', String(o.connections),
    '-d', `${o.durationS}s`,
    '--timeout', `${o.timeoutS ?? 10}s`,
    '-s', SCRIPT,
    `${o.url}${o.path}`,
  ];
  const child = spawnChild('wrk', args, {
    env: { ...process.env, WRK_BODIES: o.bodiesFile, WRK_PATH: o.path, WRK_AUTH: o.auth ?? '' },
  });
  let output = '';
  child.proc.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  // wrk stops itself after -d; the kill is only for a wedged run.
  const killer = setTimeout(() => void child.stop(1000), (o.durationS + 30) * 1000);
  const { code, signal } = await child.exited;
  clearTimeout(killer);
  const line = output.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (code !== 0 || !line) {
    throw new Error(`wrk failed (exit ${code ?? signal}):\n${child.tail()}`);
  }
  const j = JSON.parse(line.slice('WRK_JSON '.length)) as Record<string, number>;
  const n = (k: string) => j[k] ?? 0;
  const durationS = n('duration_us') / 1e6;
  return {
    requests: n('requests'),
    durationS,
    requestsPerS: n('requests') / durationS,
    statusErrors: n('status'),
    socketErrors: { connect: n('connect'), read: n('read'), write: n('write'), timeout: n('timeout') },
    latencyMs: {
      mean: n('lat_mean_us') / 1000,
      p50: n('lat_p50_us') / 1000,
      p90: n('lat_p90_us') / 1000,
      p99: n('lat_p99_us') / 1000,
      max: n('lat_max_us') / 1000,
    },
  };
}

/**
 * Child processes and temp dirs for the benches, and their cleanup.
 *
 * 1. Every child a bench starts is tracked here; on exit (normal, error, ctrl-c, SIGTERM or
 *    the run's hard deadline) whatever is still alive is killed, so a bench never leaves a
 *    server or a wrk behind.
 * 2. Children are started as `node` directly (no npm, no shell), so a signal reaches the
 *    process it is meant for and the pid we hold is the server's own.
 * 3. A child's stdout/stderr is always drained (a full pipe would stall the child and skew
 *    the measurement); only the last lines are kept, for error messages.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root (bench/lib/ is two levels down). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let installed = false;
let interrupted = false;

/** A signal arrived: the run is being torn down, its results are not worth keeping. */
export const isInterrupted = (): boolean => interrupted;

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function killAll(signal: NodeJS.Signals): void {
  for (const child of children) {
    if (!alive(child)) continue;
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

function removeTempDirs(): void {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.once('exit', () => {
    killAll('SIGKILL');
    removeTempDirs();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      interrupted = true;
      process.stderr.write(`\nbench: ${signal}, stopping child processes\n`);
      killAll('SIGTERM');
      // Give them a moment to stop cleanly; the exit handler SIGKILLs the rest.
      setTimeout(() => process.exit(130), 500);
    });
  }
}

/** Kills everything after ms, so a bench always stops by itself. */
export function armDeadline(ms: number, what: string): void {
  installCleanup();
  setTimeout(() => {
    process.stderr.write(`\nbench: ${what} exceeded its ${Math.round(ms / 1000)} s budget; stopping\n`);
    process.exit(1);
  }, ms).unref();
}

export function track<T extends ChildProcess>(child: T): T {
  installCleanup();
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function makeTempDir(prefix: string): string {
  installCleanup();
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** A running child with its output drained into small tails. */
export interface Child {
  proc: ChildProcess;
  /** Resolves with the JSON line (from stdout) for which match returns true. */
  waitForJson(match: (line: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>>;
  /** The last lines of stdout and stderr, for error messages. */
  tail(): string;
  /** SIGTERM, then SIGKILL after graceMs; resolves with the exit code (null if killed by a signal). */
  stop(graceMs?: number): Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const TAIL_LINES = 30;

export function spawnChild(command: string, args: string[], options: SpawnOptions = {}): Child {
  const proc = track(spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...options }));
  const lines: string[] = [];
  const remember = (prefix: string) => (line: string) => {
    lines.push(prefix + line);
    if (lines.length > TAIL_LINES) lines.shift();
  };
  const watchers = new Set<(line: string) => void>();
  if (proc.stdout) {
    const rl = createInterface({ input: proc.stdout });
    rl.on('line', remember(''));
    rl.on('line', (line) => {
      for (const w of watchers) w(line);
    });
  }
  if (proc.stderr) createInterface({ input: proc.stderr }).on('line', remember('stderr: '));

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const tail = () => lines.join('\n');

  return {
    proc,
    exited,
    tail,
    waitForJson(match, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms; output:\n${tail()}`)), timeoutMs);
        const watcher = (line: string) => {
          if (!line.startsWith('{')) return;
          let parsed: Record<string, unknown>;
          try {
            parsed = JSON.parse(line) as Record<string, unknown>;
          } catch {
            return;
          }
          if (match(parsed)) finish(null, parsed);
        };
        const onExit = () => finish(new Error(`exited before it was ready; output:\n${tail()}`));
        function finish(error: Error | null, value?: Record<string, unknown>) {
          clearTimeout(timer);
          watchers.delete(watcher);
          proc.off('exit', onExit);
          if (error) reject(error);
          else resolve(value!);
        }
        watchers.add(watcher);
        proc.once('exit', onExit);
      });
    },
    async stop(graceMs = 10_000) {
      if (alive(proc)) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => alive(proc) && proc.kill('SIGKILL'), graceMs);
        const { code } = await exited;
        clearTimeout(timer);
        return code;
      }
      return (await exited).code;
    },
  };
}

/** The open-files limit the benches ask for (10,000 held sockets per process, plus slack). */
export const NOFILE_WANTED = 65536;

/**
 * [command, args] that run `command args…` through bash after raising the open-files soft
 * limit to NOFILE_WANTED, or to the hard limit when that is lower (an unprivileged container
 * cannot go above it). `exec` keeps the pid: the pid we hold is the program's own.
 */
export function withNofile(command: string, args: string[]): [string, string[]] {
  const script = `ulimit -n ${NOFILE_WANTED} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`;
  return ['bash', ['-c', script, command, ...args]];
}

/** "Max open files" (soft) of a process, from /proc/<pid>/limits; null if unreadable. */
export function openFilesLimit(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? (m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1])) : null;
  } catch {
    return null;
  }
}

/** Resident set size of a process in KiB (VmRSS), null if it is gone. */
export function rssKiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Proportional set size in KiB (Pss from /proc/<pid>/smaps_rollup): pages shared between
 * processes (nginx's shared memory zone, mapped by master and worker) are split between
 * them instead of counted in full by each. null if unreadable.
 */
export function pssKiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** Pids whose parent is pid (nginx's workers under its master), from /proc/<n>/stat. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * `node [nodeArgs] --import tsx script [args]`, from the repository root, with the open-files
 * limit raised (see withNofile) so a server can hold 10,000 polls.
 */
export function spawnNode(script: string, opts: { args?: string[]; nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {}): Child {
  const [command, args] = withNofile(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...(opts.args ?? [])]);
  return spawnChild(command, args, { env: opts.env ?? process.env });
}

let clockTicks: number | null = null;

/**
 * CPU seconds (user + system, all threads) a process has used so far, from /proc; null where
 * there is no /proc. The difference over a run, divided by the requests served, is the
 * server's CPU cost per request: unlike requests/s it does not depend on how the two cores
 * were shared with wrk and with whatever else ran on the machine.
 */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  if (clockTicks === null) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    clockTicks = Number(r.stdout?.trim()) || 100;
  }
  // Fields after "(comm)": state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/**
 * The `pollgate` command spawned for real (`node bin/pollgate.js …` in the package root), with
 * no POLLGATE_* variables from the caller's shell: start() for long-running commands, run() to
 * the end (bounded), stop() with SIGTERM; killChildren() after a test file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sleep } from './wait.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The environment of a child: no POLLGATE_* from the caller's shell. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('POLLGATE_')) env[k] = v;
  return { ...env, ...extra };
}

export interface Child {
  proc: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
}

const children = new Set<ChildProcess>();

export function start(args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ['bin/pollgate.js', ...args], { cwd: ROOT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  const child: Child = {
    proc,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        children.delete(proc);
        resolve(code ?? signal ?? 'unknown');
      });
    }),
  };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (child.stdout += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (child.stderr += d));
  return child;
}

/** Runs to the end (bounded); answers exit code and output. */
export async function run(args: string[], env: Record<string, string> = {}, ms = 60_000) {
  const child = start(args, env);
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), ms);
  const code = await child.exited;
  clearTimeout(timer);
  await sleep(0);
  return { code, stdout: child.stdout, stderr: child.stderr };
}

/** Stops a long-running child with SIGTERM; answers its exit code. */
export async function stop(child: Child, ms = 10_000): Promise<number | string> {
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), ms);
  const code = await child.exited;
  clearTimeout(timer);
  return code;
}

export function killChildren(): void {
  for (const proc of children) proc.kill('SIGKILL');
}

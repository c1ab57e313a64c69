/**
 * The build (bin/build.js) as the tests of compiled code need it: ensureBuilt() rebuilds when
 * dist/.build-stamp is missing or older than a source (a fresh clone's `npm install` built it);
 * cleanEnv() is the environment of a user's shell: no test-runner or POLLGATE_* settings, and no
 * node_modules/.bin on PATH (npm puts the repository's, with tsx and tsc, there for scripts).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './process.ts';

function stale(): boolean {
  let built: number;
  try {
    built = statSync(join(ROOT, 'dist/.build-stamp')).mtimeMs;
  } catch {
    return true;
  }
  const src = join(ROOT, 'src');
  return readdirSync(src, { recursive: true }).some(
    (f) => typeof f === 'string' && !f.includes('dist/') && statSync(join(src, f)).mtimeMs > built,
  );
}

export function ensureBuilt(): void {
  if (!stale()) return;
  const r = spawnSync(process.execPath, ['bin/build.js'], { cwd: ROOT, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`npm run build failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
}

export function cleanEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('POLLGATE_') || k.startsWith('NODE_TEST') || k === 'NODE_OPTIONS' || k.startsWith('npm_')) continue;
    env[k] = v;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((dir) => !dir.includes('node_modules'))
    .join(':');
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

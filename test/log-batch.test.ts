/**
 * Log lines are written in batches (src/log-batch.ts): every line arrives, in order, whether
 * written in one busy turn, across turns, or right before process.exit; and a process whose
 * stdout reader is gone still exits at once (no retry loop on EPIPE at exit).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Runs a script that logs through batchedWriter(1); resolves with its stdout and exit. */
function run(script: string, opts: { closeStdoutAfterFirstLine?: boolean } = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { batchedWriter } from './src/log-batch.ts';\nconst out = batchedWriter(1);\n${script}`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b));
  child.stdout.on('data', (b: Buffer) => {
    stdout += b;
    if (opts.closeStdoutAfterFirstLine && stdout.includes('\n')) child.stdout.destroy();
  });
  const started = Date.now();
  return new Promise<{ stdout: string; stderr: string; code: number | null; ms: number }>((resolve) => {
    child.on('exit', (code) => {
      // Let the pipe drain what the child wrote before it exited.
      setTimeout(() => resolve({ stdout, stderr, code, ms: Date.now() - started }), 50);
    });
  });
}

test('every line arrives in order: 5,000 in one turn, lines across turns, and the last ones right before process.exit', async () => {
  const r = await run(`
let n = 0;
for (let i = 0; i < 5000; i++) out.write(JSON.stringify({ n: n++ }) + '\\n');
setTimeout(() => {
  out.write(JSON.stringify({ n: n++ }) + '\\n');
  setImmediate(() => {
    out.write(JSON.stringify({ n: n++ }) + '\\n');
    out.write(JSON.stringify({ n: n++ }) + '\\n');
    process.exit(0);
  });
}, 20);
`);
  assert.equal(r.code, 0, r.stderr);
  const ns = r.stdout.trim().split('\n').map((l) => JSON.parse(l).n);
  assert.equal(ns.length, 5003);
  assert.deepEqual(ns, Array.from({ length: 5003 }, (_, i) => i));
});

test('stdout gone: logging goes on without errors and process.exit returns at once', async () => {
  const r = await run(
    `
out.write('{"first":true}\\n');
let i = 0;
const t = setInterval(() => {
  for (let k = 0; k < 100; k++) out.write(JSON.stringify({ i: i++ }) + '\\n');
  if (i >= 5000) { clearInterval(t); process.exit(0); }
}, 1);
`,
    { closeStdoutAfterFirstLine: true },
  );
  assert.equal(r.code, 0, `exit code ${r.code}; stderr: ${r.stderr}`);
  assert.ok(r.ms < 10_000, `exited ${r.ms} ms after start`);
  assert.match(r.stdout, /"first":true/);
});

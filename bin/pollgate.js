#!/usr/bin/env node
// The `pollgate` command: runs the compiled CLI (dist/, made by `npm run build`, which
// `npm install` runs) with plain node. Only in a checkout whose TypeScript sources changed since
// that build does it run the sources instead, through tsx (a development dependency), so a
// change is never tried against a stale build.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));

function buildIsStale() {
  const src = `${root}src`;
  if (!existsSync(src)) return false; // an installed package: dist/ is all there is
  let built;
  try {
    built = statSync(`${root}dist/.build-stamp`).mtimeMs;
  } catch {
    return true;
  }
  return readdirSync(src, { recursive: true }).some(
    (file) => typeof file === 'string' && file.endsWith('.ts') && !file.includes('dist/') && statSync(`${src}/${file}`).mtimeMs > built,
  );
}

if (buildIsStale()) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write('pollgate: the build in dist/ is missing or older than src/: run `npm run build`\n');
    process.exit(1);
  }
  register();
  await import('../src/cli/main.ts');
} else {
  await import('../dist/cli/main.js');
}

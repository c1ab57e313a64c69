#!/usr/bin/env node
// `npm run build` (and `npm install`, through `prepare`): compiles the TypeScript sources with tsc.
//
//   src/ → dist/                 the server and the `pollgate` command (tsconfig.build.json), at
//                                the same depth as the sources so lookups relative to a module
//                                (../package.json, ../../../schema/…) resolve the same way; the
//                                ops page's static files (src/ui) are copied next to them.
//   src/client/ → src/client/dist/{esm,cjs}   the pollgate-client package, once as ES modules
//                                and once as CommonJS (src/client/tsconfig*.json).
//
// dist/.build-stamp is written last: bin/pollgate.js compares it with the sources' times.
import { spawn } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function compile(project) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [tsc, '-p', join(root, project)], { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`tsc -p ${project} failed (exit ${code})`))));
  });
}

/** Declarations keep the sources' `./x.ts` specifiers; a consumer's default config refuses them (TS5097). */
function rewriteDeclarations(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !/\.d\.ts$/.test(entry.name)) continue;
    const file = join(entry.parentPath, entry.name);
    const text = readFileSync(file, 'utf8');
    const rewritten = text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1$2.js$3');
    if (rewritten !== text) writeFileSync(file, rewritten);
  }
}

const dist = join(root, 'dist');
const clientDist = join(root, 'src/client/dist');
rmSync(dist, { recursive: true, force: true });
rmSync(clientDist, { recursive: true, force: true });

await Promise.all([
  compile('tsconfig.build.json'),
  compile('src/client/tsconfig.json'),
  compile('src/client/tsconfig.cjs.json'),
]);
cpSync(join(root, 'src/ui'), join(dist, 'ui'), { recursive: true, filter: (from) => !from.endsWith('.ts') });
rewriteDeclarations(dist);
rewriteDeclarations(clientDist);
// The CommonJS build sits inside a "type": "module" package: this marks its .js files as CommonJS.
writeFileSync(join(clientDist, 'cjs/package.json'), '{\n  "type": "commonjs"\n}\n');
writeFileSync(join(dist, '.build-stamp'), `${new Date().toISOString()}\n`);

/**
 * The CPU budget of one publish, from a .cpuprofile of pollgate's main thread: every busy
 * sample is put in one step of the publish path (HTTP parse, edge/auth, body read, JSON
 * parse, validation, id, envelope, group commit, insert, metrics, log line, response, …) by
 * the innermost frame on its stack that a rule recognises, and the step's time is divided by
 * the events published while the profile ran. The sum is the main thread's CPU per event.
 *
 * Rules see the function name and the file (pollgate's src/ files, packages, node:
 * internals); tsx hides src/ line numbers, so the rules go by function and file only. A
 * sample whose stack no rule recognises is "other". Run by hand on a saved profile:
 *   node --import tsx bench/lib/publish-budget.ts <file.cpuprofile> <events>
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ROOT } from './proc.ts';
import type { CallFrame, CpuProfile, ProfileNode } from './profile.ts';


export const STEPS = [
  'HTTP parse (socket read, llhttp, request objects)',
  'Hono routing, context and adapter',
  'edge: request id, auth (SHA-256 of the key)',
  'body read',
  'JSON parse (+ UTF-8 and number checks)',
  'validation',
  'id',
  'envelope (answer JSON)',
  'answer assembly (publish route)',
  'group commit (BEGIN, savepoints, COMMIT + fsync)',
  'insert (events row, tenant head)',
  'publish bookkeeping (publisher, hub/bridge notify)',
  'metrics',
  'log line',
  'response (headers, write to the socket)',
  'timers and promise plumbing',
  'garbage collection',
  'other',
] as const;
export type Step = (typeof STEPS)[number];

type Rule = [Step, (f: CallFrame, file: string) => boolean];

const fn = (...names: string[]) => (f: CallFrame) => names.includes(f.functionName);
const inFile = (...prefixes: string[]) => (_f: CallFrame, file: string) => prefixes.some((p) => file.startsWith(p));

/** Checked for each frame from the leaf outwards; the first frame a rule recognises decides. */
const RULES: Rule[] = [
  ['garbage collection', (f) => f.functionName === '(garbage collector)'],
  ['log line', inFile('pino', 'sonic-boom', 'fast-redact', 'quick-format-unescaped', 'safe-stable-stringify', 'src/log.ts', 'src/http/request-log.ts', 'src/http/access-log.ts')],
  ['metrics', inFile('prom-client', 'tdigest', 'bintrees', 'src/metrics.ts')],
  ['validation', (f, file) => file.startsWith('zod') || file === 'src/http/validate.ts' || file === 'src/http/event-input.ts' || f.functionName === 'toNewEvent'],
  ['id', (f, file) => file === 'src/publisher.ts' && (f.functionName === 'newEventId' || f.functionName === 'base62')],
  ['envelope (answer JSON)', inFile('src/store/envelope.ts', 'src/store/cursor.ts')],
  ['insert (events row, tenant head)', inFile('src/store/sqlite/log.ts', 'src/store/postgres/append.ts')],
  ['group commit (BEGIN, savepoints, COMMIT + fsync)', inFile('src/store/sqlite/writer.ts', 'src/store/sqlite/index.ts', 'src/store/write-health.ts')],
  ['publish bookkeeping (publisher, hub/bridge notify)', inFile('src/publisher.ts', 'src/hub/', 'src/push/')],
  ['JSON parse (+ UTF-8 and number checks)', (f, file) => file === 'src/http/body.ts' && ['readJsonBody', 'hasNonFiniteNumber', 'checkContentType'].includes(f.functionName)],
  ['body read', (_f, file) => file === 'src/http/body.ts'],
  ['edge: request id, auth (SHA-256 of the key)', inFile('src/http/edge.ts', 'src/http/auth.ts', 'src/auth/', 'src/http/incoming.ts')],
  ['response (headers, write to the socket)', (f, file) =>
    file.startsWith('node:_http_outgoing') || file.startsWith('node:net') || file.startsWith('node:internal/streams/writable') ||
    fn('writev', 'writeUtf8String', 'writeBuffer', 'writeLatin1String', 'writevGeneric', 'writeGeneric', 'afterWriteDispatched')(f) ||
    (file.startsWith('@hono/node-server') && /^response|^writeFromReadableStream|buildOutgoingHttpHeaders/.test(f.functionName))],
  ['HTTP parse (socket read, llhttp, request objects)', (f, file) =>
    file.startsWith('node:_http_common') || file.startsWith('node:_http_server') || file.startsWith('node:_http_incoming') ||
    file.startsWith('node:internal/streams/readable') || fn('onStreamRead', 'execute')(f)],
  ['answer assembly (publish route)', inFile('src/http/publish.ts')],
  ['Hono routing, context and adapter', inFile('hono', '@hono/node-server', 'src/http/app.ts')],
  ['timers and promise plumbing', (f, file) => file.startsWith('node:internal/timers') || file.startsWith('node:internal/process/task_queues') || fn('processImmediate', 'processTicksAndRejections', 'runMicrotasks')(f)],
];

function fileOf(url: string): string {
  let u = url.replace(/^file:\/\//, '');
  const root = ROOT.endsWith('/') ? ROOT : `${ROOT}/`;
  if (u.startsWith(root)) u = u.slice(root.length);
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 'node_modules/'.length);
  // Another checkout's pollgate (an A/B against a base version): its src/ files are ours too.
  const src = u.lastIndexOf('/src/');
  if (!u.startsWith('src/') && !u.startsWith('node:') && src >= 0) u = u.slice(src + 1);
  return u;
}

export interface Budget {
  events: number;
  busyMs: number;
  /** µs of main-thread CPU per event, by step (STEPS order). */
  perEventUs: Array<{ step: Step; us: number; percent: number }>;
  totalUs: number;
}

export function publishBudget(file: string, events: number, opts: { skipFirstMs?: number } = {}): Budget {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const stepOfNode = new Map<number, Step | null>();
  const classify = (id: number): Step | null => {
    const known = stepOfNode.get(id);
    if (known !== undefined) return known;
    let step: Step | null = null;
    const first = byId.get(id)!.callFrame.functionName;
    if (first === '(idle)') step = null;
    else {
      step = 'other';
      outer: for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const f = byId.get(cur)!.callFrame;
        const file = fileOf(f.url);
        for (const [s, test] of RULES) {
          if (test(f, file)) {
            step = s;
            break outer;
          }
        }
      }
    }
    stepOfNode.set(id, step);
    return step;
  };

  const skipUs = (opts.skipFirstMs ?? 0) * 1000;
  const us = new Map<Step, number>();
  let clock = 0;
  let busy = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    clock += profile.timeDeltas[i] ?? 0;
    if (clock < skipUs) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const step = classify(profile.samples[i]!);
    if (step === null) continue;
    busy += dt;
    us.set(step, (us.get(step) ?? 0) + dt);
  }
  return {
    events,
    busyMs: busy / 1000,
    totalUs: busy / events,
    perEventUs: STEPS.map((step) => ({ step, us: (us.get(step) ?? 0) / events, percent: (100 * (us.get(step) ?? 0)) / busy })),
  };
}

export function renderBudget(b: Budget): string {
  return [
    `CPU budget of one publish (main thread, ${b.busyMs.toFixed(0)} ms busy over ${b.events} events: ${b.totalUs.toFixed(1)} µs/event):`,
    ...b.perEventUs.map((s) => `  ${s.us.toFixed(2).padStart(6)} µs  ${s.percent.toFixed(1).padStart(5)}%  ${s.step}`),
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, events, skip] = process.argv.slice(2);
  if (!file || !events) {
    process.stderr.write('usage: node --import tsx bench/lib/publish-budget.ts <file.cpuprofile> <events> [skip-first-ms]\n');
    process.exit(2);
  }
  process.stdout.write(`${renderBudget(publishBudget(file, Number(events), { skipFirstMs: Number(skip ?? 0) }))}\n`);
}

/**
 * For the publish scenarios under --profile: the budget of the pollgate profile the duel
 * summarised, over every event appended while it ran (the log checks count them), added to
 * the first row's notes and logged.
 */
export function addBudget(
  result: { rows: Array<{ notes: string[] }>; details: { profile: { file: string; skippedMs: number } | null; checks: Array<{ appended: number }> } },
  log: (message: string) => void,
): Budget | null {
  const profile = result.details.profile;
  if (!profile) return null;
  const events = result.details.checks.reduce((n, c) => n + c.appended, 0);
  try {
    const budget = publishBudget(profile.file, events, { skipFirstMs: profile.skippedMs });
    log(renderBudget(budget));
    result.rows[0]?.notes.push(
      `CPU budget from the profile (main thread, µs per event): ${budget.perEventUs.filter((s) => s.us >= 0.05).map((s) => `${s.step} ${s.us.toFixed(2)}`).join('; ')}; total ${budget.totalUs.toFixed(1)}`,
    );
    return budget;
  } catch (error) {
    log(`could not read the budget from ${profile.file}: ${(error as Error).message}`);
    return null;
  }
}

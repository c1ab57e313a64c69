/**
 * Consumer filters: which events of its tenant a consumer receives.
 *
 * Guarantees:
 * - parseFilter accepts only a well-formed filter (strict: unknown keys are errors) and
 *   returns a normalized copy, or null when the filter matches everything. Every rejection
 *   is a FilterError whose message starts with the offending path ("where[2].op: ...",
 *   0-based array indexes; condition N of the expression is where[N-1]) and whose
 *   expression errors carry 1-based character positions.
 * - compileFilter validates again (a stored filter is still untrusted) and returns a
 *   Matcher that never throws on any event and never re-parses anything per event.
 * - A missing field fails every operator except `exists` (false), `ne` and `nin` (true).
 *   JSON null is a present value.
 */

export type Op = 'eq' | 'ne' | 'in' | 'nin' | 'contains' | 'starts_with' | 'exists' | 'gt' | 'gte' | 'lt' | 'lte';
export type Condition = { field: string; op: Op; value?: unknown };
/** Normalized and JSON-serializable. */
export type Filter = { types?: string[]; where?: Condition[]; expression?: string };

export class FilterError extends Error {
  /** Where the problem is, e.g. "filter.where[2].op". */
  readonly path: string;
  constructor(path: string, problem: string) {
    super(`${path === 'filter' ? 'filter' : path.slice('filter.'.length)}: ${problem}`);
    this.name = 'FilterError';
    this.path = path;
  }
}

export interface Matcher {
  /** true when the filter looks at `data` (the caller then needs the parsed data). */
  readonly needsData: boolean;
  /** true when every event matches (no filter). Lets the caller skip work. */
  readonly matchesAll: boolean;
  /** Fast pre-check on type alone; false means the event can't match. */
  matchesType(type: string): boolean;
  matches(event: { id: string; type: string; tenant: string; time: string; data: unknown }): boolean;
}

type Event = Parameters<Matcher['matches']>[0];

const MAX_TYPES = 100;
const MAX_TYPE_LENGTH = 200;
const MAX_CONDITIONS = 50;
const MAX_EXPRESSION_LENGTH = 1000;
const MAX_FIELD_LENGTH = 500;
// Caps recursion in validation/equality on hostile values; real filter values are shallow.
const MAX_VALUE_DEPTH = 32;

const OPS: ReadonlySet<string> = new Set<Op>(['eq', 'ne', 'in', 'nin', 'contains', 'starts_with', 'exists', 'gt', 'gte', 'lt', 'lte']);
const ENVELOPE_FIELDS: ReadonlySet<string> = new Set(['id', 'type', 'tenant', 'time', 'data']);
const SEGMENT = /^[A-Za-z0-9_-]+$/;
const ARRAY_INDEX = /^(?:0|[1-9][0-9]{0,8})$/;

// ---------------------------------------------------------------------------
// Validation

export function parseFilter(input: unknown): Filter | null {
  return validate(input).filter;
}

type Node = { kind: 'cond'; index: number } | { kind: 'and' | 'or'; items: Node[] };

function validate(input: unknown): { filter: Filter | null; ast: Node | null } {
  if (input === null || input === undefined) return { filter: null, ast: null };
  if (!isPlainObject(input)) throw new FilterError('filter', 'must be an object or null');
  checkKeys(input, ['types', 'where', 'expression'], 'filter');

  const filter: Filter = {};
  if (input.types !== undefined) filter.types = validateTypes(input.types);
  if (input.where !== undefined) filter.where = validateWhere(input.where);

  let ast: Node | null = null;
  if (input.expression !== undefined) {
    if (filter.where === undefined) throw new FilterError('filter.expression', 'not allowed without "where"');
    if (typeof input.expression !== 'string') throw new FilterError('filter.expression', 'must be a string');
    ast = parseExpression(input.expression, filter.where.length);
    filter.expression = input.expression.trim();
  } else if (filter.where !== undefined) {
    ast = { kind: 'and', items: filter.where.map((_, index) => ({ kind: 'cond', index })) };
  }

  if (filter.types === undefined && filter.where === undefined) return { filter: null, ast: null };
  return { filter, ast };
}

function validateTypes(types: unknown): string[] {
  if (!Array.isArray(types)) throw new FilterError('filter.types', 'must be an array of type patterns');
  // An empty list would silently mean "nothing"; absence already means "everything".
  if (types.length === 0) throw new FilterError('filter.types', 'must not be empty; omit "types" to receive all types');
  if (types.length > MAX_TYPES) throw new FilterError('filter.types', `at most ${MAX_TYPES} patterns allowed (got ${types.length})`);
  const out: string[] = [];
  types.forEach((pattern: unknown, i) => {
    const path = `filter.types[${i}]`;
    if (typeof pattern !== 'string') throw new FilterError(path, 'must be a string');
    if (pattern.length === 0) throw new FilterError(path, 'must not be empty');
    if (pattern.length > MAX_TYPE_LENGTH) throw new FilterError(path, `longer than ${MAX_TYPE_LENGTH} characters`);
    const segments = pattern.split('.');
    segments.forEach((seg, j) => {
      if (seg === '**') {
        if (j !== segments.length - 1) throw new FilterError(path, '"**" may only be the last segment');
      } else if (seg === '') {
        throw new FilterError(path, `empty segment in "${pattern}"`);
      } else if (seg !== '*' && !SEGMENT.test(seg)) {
        throw new FilterError(path, `invalid segment ${JSON.stringify(seg)}; a segment is [A-Za-z0-9_-]+, "*", or a final "**"`);
      }
    });
    if (!out.includes(pattern)) out.push(pattern);
  });
  return out;
}

function validateWhere(where: unknown): Condition[] {
  if (!Array.isArray(where)) throw new FilterError('filter.where', 'must be an array of conditions');
  if (where.length === 0) throw new FilterError('filter.where', 'must not be empty; omit "where" to match all events');
  if (where.length > MAX_CONDITIONS) throw new FilterError('filter.where', `at most ${MAX_CONDITIONS} conditions allowed (got ${where.length})`);
  return where.map((c: unknown, i) => validateCondition(c, `filter.where[${i}]`));
}

function validateCondition(c: unknown, path: string): Condition {
  if (!isPlainObject(c)) throw new FilterError(path, 'must be an object like {"field":…,"op":…,"value":…}');
  checkKeys(c, ['field', 'op', 'value'], path);

  const { field, op, value } = c;
  if (typeof field !== 'string') throw new FilterError(`${path}.field`, 'must be a string');
  validateField(field, `${path}.field`);
  if (typeof op !== 'string') throw new FilterError(`${path}.op`, 'must be a string');
  if (!OPS.has(op)) throw new FilterError(`${path}.op`, `unknown operator ${JSON.stringify(op)}`);

  const vpath = `${path}.value`;
  const need = (what: string): never => {
    throw new FilterError(vpath, `operator "${op}" needs ${what}`);
  };
  if (op === 'exists') {
    if (value !== undefined && typeof value !== 'boolean') need('a boolean (or no value)');
    // Explicit in the normalized form so that equal filters serialize equally.
    return { field, op, value: value ?? true };
  }
  if (value === undefined) need('a value');
  if (!isJsonValue(value, 0)) throw new FilterError(vpath, 'must be a JSON value');
  switch (op) {
    case 'in':
    case 'nin':
      if (!Array.isArray(value)) need('an array');
      break;
    case 'starts_with':
      if (typeof value !== 'string') need('a string');
      break;
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte':
      // Any other type could never compare true; better to say so now.
      if (typeof value !== 'number' && typeof value !== 'string') need('a number or a string');
      break;
  }
  return { field, op: op as Op, value: structuredClone(value) };
}

function validateField(field: string, path: string): void {
  if (field.length > MAX_FIELD_LENGTH) throw new FilterError(path, `longer than ${MAX_FIELD_LENGTH} characters`);
  if (ENVELOPE_FIELDS.has(field)) return;
  if (field.startsWith('data.')) {
    if (field.split('.').includes('')) throw new FilterError(path, `empty path segment in ${JSON.stringify(field)}`);
    return;
  }
  throw new FilterError(path, `unknown field ${JSON.stringify(field)}; use id, type, tenant, time, data or data.<path>`);
}

function checkKeys(obj: Record<string, unknown>, allowed: string[], path: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw new FilterError(path, `unknown key ${JSON.stringify(key)} (allowed: ${allowed.join(', ')})`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isJsonValue(v: unknown, depth: number): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (depth >= MAX_VALUE_DEPTH) return false;
  if (Array.isArray(v)) return v.every((x) => isJsonValue(x, depth + 1));
  if (isPlainObject(v)) return Object.values(v).every((x) => isJsonValue(x, depth + 1));
  return false;
}

// ---------------------------------------------------------------------------
// Expression: tokenizer + recursive descent.
//   or  := and ("or" and)*
//   and := atom ("and" atom)*
//   atom := NUMBER | "(" or ")"

type Token = { kind: 'num' | 'and' | 'or' | '(' | ')'; text: string; pos: number };

function parseExpression(src: string, conditionCount: number): Node {
  const fail = (problem: string): never => {
    throw new FilterError('filter.expression', problem);
  };
  if (src.length > MAX_EXPRESSION_LENGTH) fail(`longer than ${MAX_EXPRESSION_LENGTH} characters`);

  const tokens: Token[] = [];
  // Words are runs of letters/digits so that "1and2" is one bad token, not three good ones.
  const lexer = /\s+|[()]|[A-Za-z0-9]+|./guy;
  for (let m = lexer.exec(src); m !== null; m = lexer.exec(src)) {
    const text = m[0];
    const pos = m.index + 1;
    if (/^\s/.test(text)) continue;
    if (text === '(' || text === ')') tokens.push({ kind: text, text, pos });
    else if (/^[0-9]+$/.test(text)) tokens.push({ kind: 'num', text, pos });
    else if (/^and$/i.test(text)) tokens.push({ kind: 'and', text, pos });
    else if (/^or$/i.test(text)) tokens.push({ kind: 'or', text, pos });
    else fail(`unexpected ${JSON.stringify(text)} at position ${pos}`);
  }
  if (tokens.length === 0) fail('must not be empty');

  // Balance first: "unbalanced parenthesis" is a clearer message than whatever the parser would trip on.
  const open: number[] = [];
  for (const t of tokens) {
    if (t.kind === '(') open.push(t.pos);
    else if (t.kind === ')' && open.pop() === undefined) fail(`unbalanced parenthesis at position ${t.pos}`);
  }
  const unclosed = open.pop();
  if (unclosed !== undefined) fail(`unbalanced parenthesis at position ${unclosed}`);

  let i = 0;
  const where = (t: Token | undefined) => (t ? `at position ${t.pos}` : 'at end of expression');

  const parseOr = (): Node => {
    const items = [parseAnd()];
    while (tokens[i]?.kind === 'or') {
      i++;
      items.push(parseAnd());
    }
    return items.length === 1 ? items[0]! : { kind: 'or', items };
  };
  const parseAnd = (): Node => {
    const items = [parseAtom()];
    while (tokens[i]?.kind === 'and') {
      i++;
      items.push(parseAtom());
    }
    return items.length === 1 ? items[0]! : { kind: 'and', items };
  };
  const parseAtom = (): Node => {
    const t = tokens[i++];
    if (t?.kind === 'num') {
      const n = Number(t.text);
      if (n < 1 || n > conditionCount) {
        fail(`condition ${t.text} does not exist (where has ${conditionCount} condition${conditionCount === 1 ? '' : 's'})`);
      }
      return { kind: 'cond', index: n - 1 };
    }
    if (t?.kind === '(') {
      const inner = parseOr();
      // Parentheses are balanced, so anything else here is a missing operator.
      if (tokens[i]?.kind !== ')') fail(`expected "and" or "or" ${where(tokens[i])}`);
      i++;
      return inner;
    }
    return fail(`expected a condition number ${where(t)}`);
  };

  const ast = parseOr();
  if (i < tokens.length) fail(`expected "and" or "or" ${where(tokens[i])}`);
  return ast;
}

// ---------------------------------------------------------------------------
// Compilation

type Pred = (e: Event) => boolean;

const MATCH_ALL: Matcher = Object.freeze({
  needsData: false,
  matchesAll: true,
  matchesType: () => true,
  matches: () => true,
});

export function compileFilter(filter: Filter | null): Matcher {
  const { filter: f, ast } = validate(filter);
  if (f === null) return MATCH_ALL;

  const typeOk = f.types ? compileTypes(f.types) : () => true;
  const conditions = f.where ?? [];
  const used = new Set<number>();
  const expr = ast ? compileNode(ast, conditions, new Map(), used) : null;
  // Only conditions the expression references can make us look at data.
  const needsData = [...used].some((k) => conditions[k]!.field.split('.')[0] === 'data');

  return Object.freeze({
    needsData,
    matchesAll: false,
    matchesType: typeOk,
    matches: expr ? (e: Event) => typeOk(e.type) && expr(e) : (e: Event) => typeOk(e.type),
  });
}

function compileTypes(patterns: string[]): (type: string) => boolean {
  const exact = new Set<string>();
  const wild: string[] = [];
  for (const p of patterns) {
    if (!p.includes('*')) {
      exact.add(p);
      continue;
    }
    // Segments are validated to [A-Za-z0-9_-], so only the dots need escaping.
    const parts = p.split('.').map((s) => (s === '*' ? '[^.]+' : s === '**' ? '[^.]+(?:\\.[^.]+)*' : s));
    wild.push(parts.join('\\.'));
  }
  if (wild.length === 0) return (t) => exact.has(t);
  const re = new RegExp(`^(?:${wild.join('|')})$`);
  if (exact.size === 0) return (t) => re.test(t);
  return (t) => exact.has(t) || re.test(t);
}

function compileNode(node: Node, conditions: Condition[], cache: Map<number, Pred>, used: Set<number>): Pred {
  if (node.kind === 'cond') {
    let p = cache.get(node.index);
    if (!p) {
      p = compileCondition(conditions[node.index]!);
      cache.set(node.index, p);
      used.add(node.index);
    }
    return p;
  }
  const items = node.items.map((n) => compileNode(n, conditions, cache, used));
  if (node.kind === 'and') {
    if (items.length === 2) {
      const [a, b] = items as [Pred, Pred];
      return (e) => a(e) && b(e);
    }
    return (e) => {
      for (const p of items) if (!p(e)) return false;
      return true;
    };
  }
  if (items.length === 2) {
    const [a, b] = items as [Pred, Pred];
    return (e) => a(e) || b(e);
  }
  return (e) => {
    for (const p of items) if (p(e)) return true;
    return false;
  };
}

/** Reads a field; undefined means missing (JSON has no undefined). */
function compileGetter(field: string): (e: Event) => unknown {
  switch (field) {
    case 'id':
      return (e) => e.id;
    case 'type':
      return (e) => e.type;
    case 'tenant':
      return (e) => e.tenant;
    case 'time':
      return (e) => e.time;
    case 'data':
      return (e) => e.data;
  }
  const path = field.split('.').slice(1);
  const index = path.map((s) => (ARRAY_INDEX.test(s) ? Number(s) : -1));
  return (e) => {
    let v: unknown = e.data;
    for (let k = 0; k < path.length; k++) {
      if (typeof v !== 'object' || v === null) return undefined;
      if (Array.isArray(v)) {
        const n = index[k]!;
        if (n < 0 || n >= v.length) return undefined;
        v = v[n];
      } else {
        const key = path[k]!;
        // Own properties only: "data.constructor" must not find Object's prototype.
        if (!Object.hasOwn(v, key)) return undefined;
        v = (v as Record<string, unknown>)[key];
      }
    }
    return v;
  };
}

function compileCondition(c: Condition): Pred {
  const get = compileGetter(c.field);
  const value = c.value;
  switch (c.op) {
    case 'exists':
      return value === false ? (e) => get(e) === undefined : (e) => get(e) !== undefined;
    case 'eq': {
      const eq = equalsTo(value);
      return (e) => {
        const v = get(e);
        return v !== undefined && eq(v);
      };
    }
    case 'ne': {
      const eq = equalsTo(value);
      return (e) => {
        const v = get(e);
        return v === undefined || !eq(v);
      };
    }
    case 'in': {
      const has = memberOf(value as unknown[]);
      return (e) => {
        const v = get(e);
        return v !== undefined && has(v);
      };
    }
    case 'nin': {
      const has = memberOf(value as unknown[]);
      return (e) => {
        const v = get(e);
        return v === undefined || !has(v);
      };
    }
    case 'contains': {
      const eq = equalsTo(value);
      const sub = typeof value === 'string' ? value : null;
      return (e) => {
        const v = get(e);
        if (typeof v === 'string') return sub !== null && v.includes(sub);
        if (Array.isArray(v)) return v.some(eq);
        return false;
      };
    }
    case 'starts_with': {
      const prefix = value as string;
      return (e) => {
        const v = get(e);
        return typeof v === 'string' && v.startsWith(prefix);
      };
    }
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      // Strings compare by UTF-16 code units, which orders same-format ISO timestamps correctly.
      const kind = typeof value;
      const ref = value as number | string;
      const cmp = {
        gt: (v: number | string) => v > ref,
        gte: (v: number | string) => v >= ref,
        lt: (v: number | string) => v < ref,
        lte: (v: number | string) => v <= ref,
      }[c.op];
      return (e) => {
        const v = get(e);
        return typeof v === kind && cmp(v as number | string);
      };
    }
  }
}

function equalsTo(value: unknown): (v: unknown) => boolean {
  if (typeof value !== 'object' || value === null) return (v) => v === value;
  return (v) => deepEqual(v, value, 0);
}

function memberOf(values: unknown[]): (v: unknown) => boolean {
  // Primitives go through a Set; only structured members need deep comparison.
  const prims = new Set<unknown>();
  const structured: unknown[] = [];
  for (const x of values) {
    if (typeof x === 'object' && x !== null) structured.push(x);
    else prims.add(x);
  }
  if (structured.length === 0) return (v) => prims.has(v);
  return (v) => {
    if (typeof v !== 'object' || v === null) return prims.has(v);
    return structured.some((x) => deepEqual(v, x, 0));
  };
}

function deepEqual(a: unknown, b: unknown, depth: number): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  // Filter values are at most MAX_VALUE_DEPTH deep, so anything deeper can't be equal.
  if (depth > MAX_VALUE_DEPTH) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i], depth + 1)) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.hasOwn(b, k)) return false;
    if (!deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], depth + 1)) return false;
  }
  return true;
}

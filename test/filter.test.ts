import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileFilter, FilterError, parseFilter, type Condition, type Matcher } from '../src/filter/filter.ts';

type Ev = Parameters<Matcher['matches']>[0];

const ev = (over: Partial<Ev> = {}): Ev => ({
  id: 'evt_1',
  type: 'ticket.create',
  tenant: 't1',
  time: '2024-05-01T10:00:00.000Z',
  data: {},
  ...over,
});

/** Compiles a filter from untrusted JSON, as the gateway does. */
const compile = (f: unknown): Matcher => compileFilter(parseFilter(f));

/** Matcher for a single condition. */
const cond = (c: Condition | Record<string, unknown>): Matcher => compile({ where: [c] });

/** Asserts that parseFilter rejects `f` with a message containing `fragment`; returns the error. */
function rejects(f: unknown, fragment: string): FilterError {
  try {
    parseFilter(f);
  } catch (err) {
    assert.ok(err instanceof FilterError, `expected FilterError, got ${String(err)}`);
    assert.ok(err.message.includes(fragment), `message ${JSON.stringify(err.message)} lacks ${JSON.stringify(fragment)}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(f)} to be rejected with "${fragment}"`);
}

// --- no filter ---------------------------------------------------------------

test('null, undefined and {} mean no filter; the null matcher matches everything', () => {
  assert.equal(parseFilter(null), null);
  assert.equal(parseFilter(undefined), null);
  assert.equal(parseFilter({}), null);
  const m = compileFilter(null);
  assert.equal(m.matchesAll, true);
  assert.equal(m.needsData, false);
  assert.equal(m.matchesType('anything.at.all'), true);
  assert.equal(m.matches(ev({ type: 'x' })), true);
  assert.equal(compileFilter({}).matchesAll, true);
});

test('a real filter does not claim matchesAll', () => {
  assert.equal(compile({ types: ['**'] }).matchesAll, false);
  assert.equal(compile({ where: [{ field: 'id', op: 'exists' }] }).matchesAll, false);
});

test('the filter itself must be an object', () => {
  rejects('ticket.*', 'filter: must be an object');
  rejects([], 'filter: must be an object');
  rejects(42, 'filter: must be an object');
});

// --- types -------------------------------------------------------------------

test('types: exact pattern matches only that type', () => {
  const m = compile({ types: ['ticket.create'] });
  assert.equal(m.matchesType('ticket.create'), true);
  assert.equal(m.matchesType('ticket.created'), false);
  assert.equal(m.matchesType('ticket'), false);
  assert.equal(m.matchesType('ticket.create.x'), false);
  assert.equal(m.matches(ev({ type: 'ticket.create' })), true);
  assert.equal(m.matches(ev({ type: 'ticket.update' })), false);
});

test('types: "*" matches exactly one segment', () => {
  const m = compile({ types: ['ticket.*'] });
  assert.equal(m.matchesType('ticket.create'), true);
  assert.equal(m.matchesType('ticket.up-date_2'), true);
  assert.equal(m.matchesType('ticket'), false);
  assert.equal(m.matchesType('ticket.a.b'), false);
  assert.equal(m.matchesType('tickets.create'), false);
  const mid = compile({ types: ['a.*.c'] });
  assert.equal(mid.matchesType('a.b.c'), true);
  assert.equal(mid.matchesType('a.c'), false);
  assert.equal(mid.matchesType('a.b.b.c'), false);
});

test('types: final "**" matches one or more segments, never zero', () => {
  const m = compile({ types: ['message.create.**'] });
  assert.equal(m.matchesType('message.create.x'), true);
  assert.equal(m.matchesType('message.create.request.channel.email'), true);
  assert.equal(m.matchesType('message.create'), false);
  assert.equal(m.matchesType('message.created.x'), false);
  assert.equal(m.matchesType('message.create.'), false);
  const all = compile({ types: ['**'] });
  assert.equal(all.matchesType('a'), true);
  assert.equal(all.matchesType('a.b.c'), true);
});

test('types: several patterns are ORed, exact and wildcard mixed', () => {
  const m = compile({ types: ['ping', 'ticket.*', 'message.**'] });
  assert.equal(m.matchesType('ping'), true);
  assert.equal(m.matchesType('ticket.close'), true);
  assert.equal(m.matchesType('message.a.b'), true);
  assert.equal(m.matchesType('pong'), false);
  assert.equal(m.matchesType('ticket'), false);
});

test('types: "**" anywhere but last is an error', () => {
  const err = rejects({ types: ['a.b', 'a.**.b'] }, 'types[1]: "**" may only be the last segment');
  assert.equal(err.path, 'filter.types[1]');
  rejects({ types: ['**.a'] }, '"**" may only be the last segment');
  rejects({ types: ['a.**.**'] }, '"**" may only be the last segment');
});

test('types: empty array, bad segments and limits are errors', () => {
  rejects({ types: [] }, 'types: must not be empty');
  rejects({ types: 'ticket.*' }, 'types: must be an array');
  rejects({ types: [3] }, 'types[0]: must be a string');
  rejects({ types: [''] }, 'types[0]: must not be empty');
  rejects({ types: ['a..b'] }, 'types[0]: empty segment');
  rejects({ types: ['a.'] }, 'types[0]: empty segment');
  rejects({ types: ['ticket.cre*'] }, 'types[0]: invalid segment "cre*"');
  rejects({ types: ['a b'] }, 'invalid segment "a b"');
  rejects({ types: ['***'] }, 'invalid segment "***"');
  rejects({ types: ['a'.repeat(201)] }, 'longer than 200 characters');
  rejects({ types: Array.from({ length: 101 }, (_, i) => `t${i}`) }, 'at most 100 patterns');
  assert.deepEqual(parseFilter({ types: Array.from({ length: 100 }, (_, i) => `t${i}`) })?.types?.length, 100);
});

test('types: normalized form drops duplicates and keeps order', () => {
  assert.deepEqual(parseFilter({ types: ['b.*', 'a', 'b.*'] }), { types: ['b.*', 'a'] });
});

test('types and where combine: matches() requires both', () => {
  const m = compile({ types: ['ticket.*'], where: [{ field: 'data.priority', op: 'eq', value: 'urgent' }] });
  assert.equal(m.matches(ev({ type: 'ticket.create', data: { priority: 'urgent' } })), true);
  assert.equal(m.matches(ev({ type: 'message.create', data: { priority: 'urgent' } })), false);
  assert.equal(m.matches(ev({ type: 'ticket.create', data: { priority: 'low' } })), false);
});

// --- operators -----------------------------------------------------------------

test('eq / ne: deep JSON equality; missing field fails eq and passes ne', () => {
  const eq = (value: unknown) => cond({ field: 'data.v', op: 'eq', value });
  const ne = (value: unknown) => cond({ field: 'data.v', op: 'ne', value });
  assert.equal(eq('urgent').matches(ev({ data: { v: 'urgent' } })), true);
  assert.equal(eq('urgent').matches(ev({ data: { v: 'URGENT' } })), false);
  assert.equal(eq(1).matches(ev({ data: { v: '1' } })), false, 'no type coercion');
  assert.equal(eq(null).matches(ev({ data: { v: null } })), true);
  assert.equal(eq(null).matches(ev({ data: {} })), false, 'missing is not null');
  assert.equal(eq({ a: [1, { b: 2 }] }).matches(ev({ data: { v: { a: [1, { b: 2 }] } } })), true);
  assert.equal(eq({ a: 1, b: 2 }).matches(ev({ data: { v: { b: 2, a: 1 } } })), true, 'key order is irrelevant');
  assert.equal(eq({ a: 1 }).matches(ev({ data: { v: { a: 1, b: 2 } } })), false);
  assert.equal(eq({ a: 1, b: 2 }).matches(ev({ data: { v: { a: 1 } } })), false);
  assert.equal(eq([1, 2]).matches(ev({ data: { v: [2, 1] } })), false, 'array order matters');
  assert.equal(eq([]).matches(ev({ data: { v: {} } })), false, 'array is not object');
  assert.equal(eq('x').matches(ev({ data: {} })), false);

  assert.equal(ne('urgent').matches(ev({ data: { v: 'low' } })), true);
  assert.equal(ne('urgent').matches(ev({ data: { v: 'urgent' } })), false);
  assert.equal(ne({ a: 1 }).matches(ev({ data: { v: { a: 1 } } })), false);
  assert.equal(ne('urgent').matches(ev({ data: {} })), true, 'missing field: ne is true');
});

test('eq on envelope fields', () => {
  assert.equal(cond({ field: 'id', op: 'eq', value: 'evt_1' }).matches(ev()), true);
  assert.equal(cond({ field: 'tenant', op: 'eq', value: 't2' }).matches(ev()), false);
  assert.equal(cond({ field: 'type', op: 'eq', value: 'ticket.create' }).matches(ev()), true);
  assert.equal(cond({ field: 'time', op: 'eq', value: '2024-05-01T10:00:00.000Z' }).matches(ev()), true);
  assert.equal(cond({ field: 'data', op: 'eq', value: { a: 1 } }).matches(ev({ data: { a: 1 } })), true);
  assert.equal(cond({ field: 'data', op: 'eq', value: 5 }).matches(ev({ data: 5 })), true);
});

test('in / nin: membership by deep equality; value must be an array', () => {
  const inn = cond({ field: 'data.v', op: 'in', value: ['a', 2, null, { k: 1 }] });
  assert.equal(inn.matches(ev({ data: { v: 'a' } })), true);
  assert.equal(inn.matches(ev({ data: { v: 2 } })), true);
  assert.equal(inn.matches(ev({ data: { v: null } })), true);
  assert.equal(inn.matches(ev({ data: { v: { k: 1 } } })), true);
  assert.equal(inn.matches(ev({ data: { v: '2' } })), false);
  assert.equal(inn.matches(ev({ data: { v: { k: 2 } } })), false);
  assert.equal(inn.matches(ev({ data: {} })), false, 'missing field: in is false');
  assert.equal(cond({ field: 'data.v', op: 'in', value: [] }).matches(ev({ data: { v: 1 } })), false);

  const nin = cond({ field: 'data.v', op: 'nin', value: ['a', { k: 1 }] });
  assert.equal(nin.matches(ev({ data: { v: 'b' } })), true);
  assert.equal(nin.matches(ev({ data: { v: 'a' } })), false);
  assert.equal(nin.matches(ev({ data: { v: { k: 1 } } })), false);
  assert.equal(nin.matches(ev({ data: {} })), true, 'missing field: nin is true');

  rejects({ where: [{ field: 'data.v', op: 'in', value: 'a' }] }, 'where[0].value: operator "in" needs an array');
  rejects({ where: [{ field: 'data.v', op: 'nin', value: { a: 1 } }] }, 'operator "nin" needs an array');
});

test('contains: substring of a string, or deep-equal element of an array', () => {
  const c = (value: unknown) => cond({ field: 'data.v', op: 'contains', value });
  assert.equal(c('ell').matches(ev({ data: { v: 'hello' } })), true);
  assert.equal(c('xyz').matches(ev({ data: { v: 'hello' } })), false);
  assert.equal(c('b').matches(ev({ data: { v: ['a', 'b'] } })), true);
  assert.equal(c('b').matches(ev({ data: { v: ['abc'] } })), false, 'array elements are compared whole');
  assert.equal(c({ id: 2 }).matches(ev({ data: { v: [{ id: 1 }, { id: 2 }] } })), true);
  assert.equal(c(1).matches(ev({ data: { v: [1, 2] } })), true);
  assert.equal(c(1).matches(ev({ data: { v: '123' } })), false, 'non-string value on a string field');
  assert.equal(c('a').matches(ev({ data: { v: { a: 1 } } })), false, 'objects do not contain');
  assert.equal(c('a').matches(ev({ data: { v: 5 } })), false);
  assert.equal(c('a').matches(ev({ data: {} })), false, 'missing field');
});

test('starts_with: string prefix; value must be a string', () => {
  const m = cond({ field: 'data.v', op: 'starts_with', value: 'ab' });
  assert.equal(m.matches(ev({ data: { v: 'abc' } })), true);
  assert.equal(m.matches(ev({ data: { v: 'xab' } })), false);
  assert.equal(m.matches(ev({ data: { v: ['ab'] } })), false);
  assert.equal(m.matches(ev({ data: {} })), false);
  assert.equal(cond({ field: 'type', op: 'starts_with', value: 'ticket.' }).matches(ev()), true);
  rejects({ where: [{ field: 'data.v', op: 'starts_with', value: 1 }] }, 'where[0].value: operator "starts_with" needs a string');
});

test('exists: default true, explicit false; null counts as present', () => {
  const yes = cond({ field: 'data.v', op: 'exists' });
  const no = cond({ field: 'data.v', op: 'exists', value: false });
  assert.equal(yes.matches(ev({ data: { v: 0 } })), true);
  assert.equal(yes.matches(ev({ data: { v: null } })), true);
  assert.equal(yes.matches(ev({ data: {} })), false);
  assert.equal(yes.matches(ev({ data: null })), false);
  assert.equal(no.matches(ev({ data: {} })), true);
  assert.equal(no.matches(ev({ data: { v: 1 } })), false);
  assert.equal(cond({ field: 'data.v', op: 'exists', value: true }).matches(ev({ data: { v: 1 } })), true);
  assert.deepEqual(parseFilter({ where: [{ field: 'data.v', op: 'exists' }] }), {
    where: [{ field: 'data.v', op: 'exists', value: true }],
  });
  rejects({ where: [{ field: 'data.v', op: 'exists', value: 'yes' }] }, 'operator "exists" needs a boolean');
});

test('gt / gte / lt / lte: numbers with numbers, strings with strings, else false', () => {
  const m = (op: string, value: unknown) => cond({ field: 'data.n', op, value });
  assert.equal(m('gt', 5).matches(ev({ data: { n: 6 } })), true);
  assert.equal(m('gt', 5).matches(ev({ data: { n: 5 } })), false);
  assert.equal(m('gte', 5).matches(ev({ data: { n: 5 } })), true);
  assert.equal(m('gte', 5).matches(ev({ data: { n: 4.9 } })), false);
  assert.equal(m('lt', 5).matches(ev({ data: { n: -1 } })), true);
  assert.equal(m('lt', 5).matches(ev({ data: { n: 5 } })), false);
  assert.equal(m('lte', 5).matches(ev({ data: { n: 5 } })), true);
  assert.equal(m('lte', 5).matches(ev({ data: { n: 6 } })), false);
  assert.equal(m('gt', 'b').matches(ev({ data: { n: 'c' } })), true);
  assert.equal(m('gt', 'b').matches(ev({ data: { n: 'a' } })), false);
  // type mismatches are false, both ways round
  assert.equal(m('gt', 5).matches(ev({ data: { n: '6' } })), false);
  assert.equal(m('lt', '5').matches(ev({ data: { n: 4 } })), false);
  assert.equal(m('gte', 0).matches(ev({ data: { n: null } })), false);
  assert.equal(m('lte', 0).matches(ev({ data: { n: [0] } })), false);
  assert.equal(m('gt', 0).matches(ev({ data: {} })), false, 'missing field');
  // ISO timestamps order lexically
  const after = cond({ field: 'time', op: 'gte', value: '2024-05-01T00:00:00.000Z' });
  assert.equal(after.matches(ev({ time: '2024-05-01T10:00:00.000Z' })), true);
  assert.equal(after.matches(ev({ time: '2024-04-30T23:59:59.999Z' })), false);
  rejects({ where: [{ field: 'data.n', op: 'gt', value: true }] }, 'operator "gt" needs a number or a string');
  rejects({ where: [{ field: 'data.n', op: 'lte', value: [1] }] }, 'operator "lte" needs a number or a string');
});

test('every operator except exists requires a value', () => {
  for (const op of ['eq', 'ne', 'in', 'nin', 'contains', 'starts_with', 'gt', 'gte', 'lt', 'lte']) {
    rejects({ where: [{ field: 'data.v', op }] }, `where[0].value: operator "${op}" needs`);
  }
});

test('missing-field semantics across all operators', () => {
  const expected: Record<string, boolean> = {
    eq: false, ne: true, in: false, nin: true, contains: false, starts_with: false,
    exists: false, gt: false, gte: false, lt: false, lte: false,
  };
  const values: Record<string, unknown> = { in: ['x'], nin: ['x'], exists: true };
  for (const [op, want] of Object.entries(expected)) {
    const m = cond({ field: 'data.nope.deeper', op, value: values[op] ?? 'x' });
    assert.equal(m.matches(ev({ data: { other: 1 } })), want, `op ${op}`);
  }
});

// --- fields and paths ----------------------------------------------------------

test('nested data paths and array indexes', () => {
  const data = { a: { b: { c: 'deep' } }, items: [{ sku: 'x1' }, { sku: 'x2' }], m: [[1, 2], [3]], o: { '0': 'zero' } };
  const eq = (field: string, value: unknown) => cond({ field, op: 'eq', value }).matches(ev({ data }));
  assert.equal(eq('data.a.b.c', 'deep'), true);
  assert.equal(eq('data.items.1.sku', 'x2'), true);
  assert.equal(eq('data.items.0.sku', 'x2'), false);
  assert.equal(eq('data.m.1.0', 3), true);
  assert.equal(eq('data.o.0', 'zero'), true, 'numeric segment is also an object key');
  assert.equal(cond({ field: 'data.items.2', op: 'exists' }).matches(ev({ data })), false, 'index out of range');
  assert.equal(cond({ field: 'data.items.sku', op: 'exists' }).matches(ev({ data })), false, 'non-numeric segment on array');
  assert.equal(cond({ field: 'data.items.01', op: 'exists' }).matches(ev({ data })), false, 'not a canonical index');
  assert.equal(cond({ field: 'data.a.b.c.d', op: 'exists' }).matches(ev({ data })), false, 'through a string');
  assert.equal(cond({ field: 'data.a.x', op: 'ne', value: 1 }).matches(ev({ data })), true);
  assert.equal(cond({ field: 'data.0', op: 'eq', value: 'first' }).matches(ev({ data: ['first'] })), true);
});

test('inherited properties are not fields', () => {
  for (const field of ['data.constructor', 'data.__proto__', 'data.toString', 'data.items.length']) {
    const m = cond({ field, op: 'exists' });
    assert.equal(m.matches(ev({ data: { items: [1] } })), false, field);
  }
});

test('field validation', () => {
  rejects({ where: [{ field: 'payload.x', op: 'exists' }] }, 'where[0].field: unknown field "payload.x"');
  rejects({ where: [{ field: 'datax', op: 'exists' }] }, 'unknown field "datax"');
  rejects({ where: [{ field: 'id.x', op: 'exists' }] }, 'unknown field "id.x"');
  rejects({ where: [{ field: 'data.', op: 'exists' }] }, 'where[0].field: empty path segment');
  rejects({ where: [{ field: 'data.a..b', op: 'exists' }] }, 'empty path segment');
  rejects({ where: [{ field: 7, op: 'exists' }] }, 'where[0].field: must be a string');
  rejects({ where: [{ op: 'exists' }] }, 'where[0].field: must be a string');
});

test('operator validation names the condition and the operator', () => {
  const err = rejects(
    { where: [{ field: 'id', op: 'exists' }, { field: 'id', op: 'exists' }, { field: 'data.t', op: 'like', value: '%a%' }] },
    'where[2].op: unknown operator "like"',
  );
  assert.equal(err.path, 'filter.where[2].op');
  assert.equal(err.name, 'FilterError');
  rejects({ where: [{ field: 'id' }] }, 'where[0].op: must be a string');
  rejects({ where: [{ field: 'id', op: 'EQ', value: 'x' }] }, 'unknown operator "EQ"');
});

test('where validation: shape and limits', () => {
  rejects({ where: [] }, 'where: must not be empty');
  rejects({ where: { field: 'id', op: 'exists' } }, 'where: must be an array');
  rejects({ where: ['id = 1'] }, 'where[0]: must be an object');
  const many = Array.from({ length: 51 }, () => ({ field: 'id', op: 'exists' }));
  rejects({ where: many }, 'where: at most 50 conditions');
  assert.equal(parseFilter({ where: many.slice(0, 50) })?.where?.length, 50);
  rejects({ where: [{ field: 'data.v', op: 'eq', value: () => 1 }] }, 'where[0].value: must be a JSON value');
  rejects({ where: [{ field: 'data.v', op: 'eq', value: Number.NaN }] }, 'must be a JSON value');
  rejects({ where: [{ field: 'data.v', op: 'eq', value: new Date() }] }, 'must be a JSON value');
});

// --- strictness ----------------------------------------------------------------

test('unknown keys are rejected in the filter and in conditions', () => {
  const top = rejects({ types: ['a'], typs: ['b'] }, 'filter: unknown key "typs"');
  assert.equal(top.path, 'filter');
  rejects({ where: [{ field: 'id', op: 'in', values: ['a'] }] }, 'where[0]: unknown key "values"');
});

// --- expressions -----------------------------------------------------------------

/** where with conditions 1..n where condition k is true iff data.c<k> === true */
const flags = (n: number) => Array.from({ length: n }, (_, k) => ({ field: `data.c${k + 1}`, op: 'eq', value: true }));
const withFlags = (m: Matcher, ...on: number[]) =>
  m.matches(ev({ data: Object.fromEntries(on.map((k) => [`c${k}`, true])) }));

test('absent expression ANDs all conditions', () => {
  const m = compile({ where: flags(3) });
  assert.equal(withFlags(m, 1, 2, 3), true);
  assert.equal(withFlags(m, 1, 2), false);
  assert.equal(withFlags(m, 2, 3), false);
});

test('precedence: "1 or 2 and 3" is "1 or (2 and 3)"', () => {
  const m = compile({ where: flags(3), expression: '1 or 2 and 3' });
  assert.equal(withFlags(m, 1), true, 'left-grouping would need 3 here');
  assert.equal(withFlags(m, 2), false);
  assert.equal(withFlags(m, 2, 3), true);
  assert.equal(withFlags(m, 3), false);
  const r = compile({ where: flags(3), expression: '1 and 2 or 3' });
  assert.equal(withFlags(r, 3), true, '"1 and 2 or 3" is "(1 and 2) or 3"');
  assert.equal(withFlags(r, 1), false);
});

test('parentheses override precedence', () => {
  const m = compile({ where: flags(3), expression: '(1 or 2) and 3' });
  assert.equal(withFlags(m, 1), false);
  assert.equal(withFlags(m, 1, 3), true);
  assert.equal(withFlags(m, 2, 3), true);
  assert.equal(withFlags(m, 3), false);
  const nested = compile({ where: flags(4), expression: '((1 and (2 or 3))) or 4' });
  assert.equal(withFlags(nested, 1, 3), true);
  assert.equal(withFlags(nested, 1), false);
  assert.equal(withFlags(nested, 4), true);
});

test('operators are case-insensitive and whitespace is free-form', () => {
  const m = compile({ where: flags(3), expression: ' (1 Or 2)\n\tAND 3 ' });
  assert.equal(withFlags(m, 2, 3), true);
  assert.equal(withFlags(m, 1, 2), false);
  assert.equal(compile({ where: flags(2), expression: '1 oR 2' }).matches(ev({ data: { c2: true } })), true);
  assert.equal(compile({ where: flags(2), expression: '(1)and(2)' }).matches(ev({ data: { c1: true } })), false);
});

test('a condition may be referenced twice or not at all', () => {
  const m = compile({ where: flags(3), expression: '(1 and 2) or (1 and 3)' });
  assert.equal(withFlags(m, 1, 3), true);
  assert.equal(withFlags(m, 2, 3), false);
  const unref = compile({ where: flags(3), expression: '2' });
  assert.equal(withFlags(unref, 2), true, 'conditions 1 and 3 are ignored');
});

test('expression naming a missing condition', () => {
  const err = rejects({ where: flags(3), expression: '1 and 4' }, 'condition 4 does not exist');
  assert.match(err.message, /^expression: /);
  assert.equal(err.path, 'filter.expression');
  rejects({ where: flags(3), expression: '0 or 1' }, 'condition 0 does not exist');
  rejects({ where: flags(1), expression: '99999999999999999999' }, 'condition 99999999999999999999 does not exist');
});

test('expression syntax errors name the problem and position', () => {
  const bad = (expression: string, fragment: string) => rejects({ where: flags(3), expression }, `expression: ${fragment}`);
  bad('(1 or 2 and 3', 'unbalanced parenthesis at position 1');
  bad('(1 or 2) and 3)', 'unbalanced parenthesis at position 15');
  bad(')1(', 'unbalanced parenthesis at position 1');
  bad('1 and (2 or (3)', 'unbalanced parenthesis at position 7');
  bad('1 and', 'expected a condition number at end of expression');
  bad('1 or and 2', 'expected a condition number at position 6');
  bad('and 1', 'expected a condition number at position 1');
  bad('()', 'expected a condition number at position 2');
  bad('1 2', 'expected "and" or "or" at position 3');
  bad('(1 2)', 'expected "and" or "or" at position 4');
  bad('1 (2)', 'expected "and" or "or" at position 3');
  bad('', 'must not be empty');
  bad('   ', 'must not be empty');
  bad('1 && 2', 'unexpected "&" at position 3');
  bad('1 and 2;', 'unexpected ";" at position 8');
  bad('1 xor 2', 'unexpected "xor" at position 3');
  bad('1and 2', 'unexpected "1and" at position 1');
  bad('not 1', 'unexpected "not" at position 1');
  bad(`1${' or 1'.repeat(200)}`, 'longer than 1000 characters');
});

test('expression requires where and must be a string', () => {
  rejects({ types: ['a'], expression: '1' }, 'expression: not allowed without "where"');
  rejects({ where: flags(1), expression: 1 }, 'expression: must be a string');
});

test('normalized filter is a JSON-serializable copy', () => {
  const value = { deep: [1, 2] };
  const input = { types: ['ticket.*'], where: [{ field: 'data.x', op: 'eq', value }], expression: '  1  ' };
  const f = parseFilter(input);
  assert.deepEqual(f, { types: ['ticket.*'], where: [{ field: 'data.x', op: 'eq', value: { deep: [1, 2] } }], expression: '1' });
  assert.deepEqual(JSON.parse(JSON.stringify(f)), f);
  value.deep.push(3);
  assert.deepEqual(f?.where?.[0]?.value, { deep: [1, 2] }, 'not aliased to the input');
  // parse(normalize(x)) is a fixed point
  assert.deepEqual(parseFilter(f), f);
});

// --- compile ----------------------------------------------------------------------

test('needsData is true only when a referenced condition reads data', () => {
  assert.equal(compile({ types: ['a.*'] }).needsData, false);
  assert.equal(compile({ where: [{ field: 'tenant', op: 'eq', value: 't1' }] }).needsData, false);
  assert.equal(compile({ where: [{ field: 'data.x', op: 'exists' }] }).needsData, true);
  assert.equal(compile({ where: [{ field: 'data', op: 'eq', value: 1 }] }).needsData, true);
  const where = [{ field: 'id', op: 'exists' }, { field: 'data.x', op: 'exists' }];
  assert.equal(compile({ where, expression: '1' }).needsData, false);
  assert.equal(compile({ where, expression: '1 or 2' }).needsData, true);
});

test('matchesType ignores where; matches enforces both', () => {
  const m = compile({ types: ['ticket.*'], where: [{ field: 'data.x', op: 'eq', value: 1 }] });
  assert.equal(m.matchesType('ticket.a'), true);
  assert.equal(m.matchesType('user.a'), false);
  assert.equal(m.matches(ev({ type: 'ticket.a', data: { x: 2 } })), false);
  assert.equal(compile({ where: [{ field: 'id', op: 'exists' }] }).matchesType('anything'), true);
});

test('compileFilter re-validates its input', () => {
  assert.throws(
    () => compileFilter({ where: [{ field: 'id', op: 'exists' }], expression: '1 and 2' }),
    (err: unknown) => err instanceof FilterError && err.message.includes('condition 2 does not exist'),
  );
  assert.throws(() => compileFilter({ types: [] }), FilterError);
});

test('matchers never throw on odd event data', () => {
  const m = compile({
    where: [
      { field: 'data.a.b', op: 'eq', value: { x: 1 } },
      { field: 'data.a.0', op: 'contains', value: 'q' },
      { field: 'data.a', op: 'in', value: [{ x: 1 }, 2] },
      { field: 'data.a', op: 'gt', value: 1 },
    ],
    expression: '1 or 2 or 3 or 4',
  });
  for (const data of [undefined, null, 0, 'str', [], [null], { a: null }, { a: [] }, { a: 'str' }, { a: { b: [] } }]) {
    assert.doesNotThrow(() => m.matches(ev({ data })), JSON.stringify(data));
  }
  assert.equal(m.matches(ev({ data: { a: 2 } })), true);
  assert.equal(m.matches(ev({ data: { a: ['zqz'] } })), true);
  assert.equal(m.matches(ev({ data: { a: { b: { x: 1 } } } })), true);
  assert.equal(m.matches(ev({ data: { a: 0 } })), false);
});

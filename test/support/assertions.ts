/**
 * Assertions on the API's error answers ({"error":{"code","message",…}}), shared by the
 * contract tests. Two strengths, kept as the tests were written:
 *
 * - assertError(): the whole error contract: status, a JSON content type, an error object
 *   with a string code and a non-empty message, optionally the code (or one of several) and a
 *   field that must be error.field and be named in the message.
 * - assertErrorShape(): the lighter check of the push tests: status and an error object with a
 *   string message, optionally the code and the field (error.field and the message by
 *   default; with fieldIn 'field-or-message' either of the two is enough).
 */
import assert from 'node:assert/strict';

export function assertErrorShape(
  r: { status: number; body: any },
  status: number,
  code?: string | string[],
  field?: string,
  fieldIn: 'field-and-message' | 'field-or-message' = 'field-and-message',
): void {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
  assert.ok(r.body?.error && typeof r.body.error === 'object', `error shape: ${JSON.stringify(r.body)}`);
  assert.equal(typeof r.body.error.message, 'string');
  if (Array.isArray(code)) {
    assert.ok(code.includes(r.body.error.code), `code ${r.body.error.code} not in ${code.join(', ')}`);
  } else if (code !== undefined) {
    assert.equal(r.body.error.code, code, JSON.stringify(r.body));
  }
  if (field !== undefined) {
    if (fieldIn === 'field-or-message') {
      const named = r.body.error.field === field || String(r.body.error.message).includes(field);
      assert.ok(named, `error should name "${field}": ${JSON.stringify(r.body)}`);
    } else {
      assert.equal(r.body.error.field, field, `error.field of ${JSON.stringify(r.body)}`);
      assert.ok(String(r.body.error.message).includes(field), `message names "${field}": ${r.body.error.message}`);
    }
  }
}

export function assertError(
  r: { status: number; body: any; headers: Headers },
  status: number,
  code?: string | string[],
  field?: string,
): void {
  assertErrorShape(r, status, code, field);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(typeof r.body.error.code, 'string');
  assert.ok(r.body.error.message.length > 0, 'error message is not empty');
}

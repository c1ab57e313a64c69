/**
 * zod at the edge: parse untrusted input, or answer 400 naming the first offending field.
 */
import type { z } from 'zod';
import { invalidField } from '../errors.ts';

/** "events[3].data.x" style path; root is used when the issue is about the whole value. */
export function fieldPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : out === '' ? String(part) : `.${String(part)}`;
  }
  return out || 'body';
}

export function parseInput<S extends z.ZodType>(schema: S, value: unknown, root = ''): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '?';
    throw invalidField(fieldPath(root, [...issue.path, key]), 'is not a known field');
  }
  throw invalidField(fieldPath(root, issue.path), issue.message);
}

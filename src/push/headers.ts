/**
 * A webhook's custom headers: what HTTP/1.1 can carry, and what pollgate leaves to itself.
 *
 * Two checks, for two moments:
 * 1. When a webhook is configured (PUT/PATCH), configProblem() holds a header map to the full
 *    rules: names are RFC 9110 tokens, values are visible ASCII, space, tab or obs-text
 *    (U+0080–U+00FF, sent as one byte each) with no leading or trailing whitespace (a receiver
 *    would strip it), no name is given twice in any case (`X-A` and `x-a`), none is a header
 *    pollgate sets itself or that would change how the request is framed, and `__proto__` is
 *    refused rather than dropped by the JSON object it lands in.
 * 2. Right before an attempt, sendProblem() checks only what the HTTP client would refuse to
 *    send: a webhook stored before these rules existed then fails each attempt with a clear
 *    error (and can be fixed with a PATCH) instead of throwing inside the client.
 */

/** Headers pollgate sets itself, or that would break the request if overridden. */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'content-length',
  'host', 'connection', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect', 'user-agent',
  'proxy-connection',
]);

export const MAX_HEADERS = 32;
export const MAX_NAME_LENGTH = 100;
export const MAX_VALUE_LENGTH = 4096;

/** RFC 9110 token: the only characters a field name may have. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** The first character a field value may not carry: a control (CR, LF, NUL, DEL…) or one above U+00FF. */
const NOT_FIELD_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

export interface HeaderProblem {
  /** The offending header name, or null when the problem is the map as a whole. */
  name: string | null;
  problem: string;
}

function describeChar(value: string, index: number): string {
  const code = value.codePointAt(index)!;
  return `U+${code.toString(16).toUpperCase().padStart(4, '0')} at position ${index + 1}`;
}

/** What the HTTP client cannot send, or null. */
export function sendProblem(headers: Readonly<Record<string, unknown>>): HeaderProblem | null {
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name)) return { name, problem: 'is not an HTTP header name' };
    if (typeof value !== 'string') return { name, problem: 'the value is not a string' };
    const bad = NOT_FIELD_CHAR.exec(value);
    if (bad) return { name, problem: `the value has ${describeChar(value, bad.index)}, which HTTP/1.1 cannot carry` };
  }
  return null;
}

/** What a configured header map breaks of the rules above, or null. */
export function configProblem(headers: Readonly<Record<string, unknown>>): HeaderProblem | null {
  if (Object.hasOwn(headers, '__proto__')) return { name: '__proto__', problem: 'is not a header name pollgate accepts' };
  const names = Object.keys(headers);
  if (names.length > MAX_HEADERS) return { name: null, problem: `at most ${MAX_HEADERS} headers` };
  const seen = new Map<string, string>();
  for (const name of names) {
    const value = headers[name];
    if (name.length > MAX_NAME_LENGTH) return { name, problem: `header names must be at most ${MAX_NAME_LENGTH} characters` };
    if (!TOKEN.test(name)) {
      return { name, problem: "header names must be HTTP tokens (letters, digits and !#$%&'*+-.^_`|~)" };
    }
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) {
      return { name, problem: `is set by pollgate or frames the request; none of ${[...RESERVED_HEADERS].join(', ')} may be set` };
    }
    const twin = seen.get(lower);
    if (twin !== undefined) return { name, problem: `repeats "${twin}": header names are case-insensitive, give each once` };
    seen.set(lower, name);
    if (typeof value !== 'string') return { name, problem: 'header values must be strings' };
    if (value.length > MAX_VALUE_LENGTH) return { name, problem: `header values must be at most ${MAX_VALUE_LENGTH} characters` };
    const bad = NOT_FIELD_CHAR.exec(value);
    if (bad) {
      return {
        name,
        problem: `the value has ${describeChar(value, bad.index)}; header values may hold visible ASCII, space, tab and U+0080–U+00FF, no control characters or line breaks`,
      };
    }
    if (/^[\t ]|[\t ]$/.test(value)) return { name, problem: 'header values must not start or end with a space or tab' };
  }
  return null;
}

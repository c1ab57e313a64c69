/**
 * The ops page's calls to the admin API, with the admin key as a Bearer header.
 *
 * The key lives in sessionStorage (this tab only). A 401 is an AuthError, which the page turns
 * into "enter the key again"; every other refusal is an ApiError carrying the gateway's own
 * message (which names the field at fault), shown to the operator as it is.
 */

const KEY_STORE = 'pollgate.adminKey';

export const session = {
  key: sessionStorage.getItem(KEY_STORE),
  /** Bumped at every sign-in and sign-out, so an answer in flight does not outlive its key. */
  epoch: 0,
  keep(key) {
    this.key = key;
    this.epoch += 1;
    sessionStorage.setItem(KEY_STORE, key);
  },
  forget() {
    this.key = null;
    this.epoch += 1;
    sessionStorage.removeItem(KEY_STORE);
  },
};

export class AuthError extends Error {}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.code = body?.error?.code ?? null;
    this.field = body?.error?.field ?? null;
  }
}

export async function api(path, { method = 'GET', body, key = session.key } = {}) {
  const headers = { authorization: `Bearer ${key}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    cache: 'no-store',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  const message = data?.error?.message ?? `${res.status} ${res.statusText}`;
  if (res.status === 401) throw new AuthError(message);
  if (!res.ok) throw new ApiError(res.status, message, data);
  return data;
}

export const consumerPath = (id, rest = '') => `/v1/consumers/${encodeURIComponent(id)}${rest}`;

/** What went wrong, in a sentence for a banner or a form. */
export function describeError(error) {
  if (error instanceof ApiError) return `${error.status}: ${error.message}`;
  return `cannot reach the gateway (${error.message})`;
}

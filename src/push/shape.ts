/**
 * The shape of a webhook's requests: method, URL template, body format and template, templated
 * headers, endpoint credentials and signing (SPEC "Delivery shapes"). With none of it set, a
 * delivery is what it always was: the envelope, POSTed as JSON, signed.
 *
 * 1. checkShape() runs at configuration time: every template parses, the URL's scheme, host and
 *    port hold no tag (the SSRF check sees the real host before any event is rendered), a JSON
 *    body is JSON and an XML body is well-formed XML whatever the tags hold, and the method,
 *    format and credentials fit together. A problem names its field and position.
 * 2. shapeOf() compiles a stored webhook once; renderRequest() makes one event's request. The
 *    signature covers the bytes actually sent. A rendered URL must keep the template's origin.
 */
import { XMLValidator } from 'fast-xml-parser';
import { encodeCursor } from '../store/cursor.ts';
import { envelopeJson } from '../store/envelope.ts';
import type { EventRecord, WebhookRow } from '../store/store.ts';
import { signatureHeaders } from './signing.ts';
import {
  compileTemplate,
  renderSample,
  renderTemplate,
  RenderError,
  TemplateError,
  type MissingPolicy,
  type Template,
  type TemplateContext,
  type TemplateView,
} from './template.ts';

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type Method = (typeof METHODS)[number];
export const FORMATS = ['json', 'xml', 'form'] as const;
export type Format = (typeof FORMATS)[number];

export const CONTENT_TYPES: Record<Format, string> = {
  json: 'application/json',
  xml: 'application/xml; charset=utf-8',
  form: 'application/x-www-form-urlencoded',
};

/** Stored in the webhook's `options` column (JSON); absent fields take the defaults. */
export interface WebhookOptions {
  format?: Format | undefined;
  /** Body template; without it a JSON webhook sends the envelope. */
  body?: string | undefined;
  /** Standard Webhooks signature headers (default true). */
  signing?: boolean | undefined;
  missing?: MissingPolicy | undefined;
  retry_schedule_ms?: number[] | undefined;
  retry_max_age_ms?: number | undefined;
  /** Deliveries per second at most. */
  rate_limit?: number | undefined;
  alerts?: AlertOptions | undefined;
}

export interface AlertOptions {
  enabled?: boolean | undefined;
  /** Failed attempts within `window_ms` that make the webhook "failing". */
  failures?: number | undefined;
  window_ms?: number | undefined;
}

export type Auth =
  | { type: 'basic'; username: string; password: string }
  | { type: 'bearer'; token: string }
  | { type: 'api_key'; in: 'header' | 'query'; name: string; value: string };

/** Stored in the webhook's `credentials` column (JSON); write-only: never shown, never logged. */
export interface WebhookCredentials {
  auth?: Auth | undefined;
  /** A static header for receivers that only compare a shared secret. */
  secret_header?: { name: string; value: string } | undefined;
}

export interface ShapeInput {
  url: string;
  method: Method;
  headers: Record<string, string>;
  options: WebhookOptions;
  credentials: WebhookCredentials;
}

export interface FieldProblem {
  field: string;
  message: string;
}

const MAX_BODY_TEMPLATE = 64 * 1024;

/** `{{` … `}}` anywhere: a template, not a plain URL. */
export const hasTags = (text: string): boolean => text.includes('{{');

/** What is wrong with a shape, naming the field (and the position in a template), or null. */
export function checkShape(input: ShapeInput): FieldProblem | null {
  const { options, credentials, method } = input;
  const url = urlTemplateProblem(input.url);
  if (url) return url;
  const format = options.format ?? 'json';
  if (options.body !== undefined) {
    if (options.body.length > MAX_BODY_TEMPLATE) return { field: 'body', message: `must be at most ${MAX_BODY_TEMPLATE} characters` };
    const body = bodyProblem(options.body, format);
    if (body) return body;
  } else if (format !== 'json') {
    return { field: 'body', message: `format "${format}" needs a body template (only json has a default body: the envelope)` };
  } else if ((method === 'GET' || method === 'DELETE') && options.format !== undefined) {
    return { field: 'format', message: `${method} sends no body unless a body template is given; drop format or add a body` };
  }
  for (const [name, value] of Object.entries(input.headers)) {
    const p = templateProblem(value, 'header');
    if (p) return { field: `headers.${name}`, message: p };
  }
  const taken = new Set(Object.keys(input.headers).map((h) => h.toLowerCase()));
  const auth = credentials.auth;
  if (auth && (auth.type === 'basic' || auth.type === 'bearer') && taken.has('authorization')) {
    return { field: 'auth', message: 'headers already set Authorization; drop one of the two' };
  }
  if (auth?.type === 'api_key' && auth.in === 'header') {
    if (taken.has(auth.name.toLowerCase())) return { field: 'auth.name', message: `headers already set ${auth.name}` };
    taken.add(auth.name.toLowerCase());
  }
  if (auth && auth.type !== 'api_key') taken.add('authorization');
  const secret = credentials.secret_header;
  if (secret && taken.has(secret.name.toLowerCase())) {
    return { field: 'secret_header.name', message: `${secret.name} is already set by headers or auth` };
  }
  return null;
}

function templateProblem(source: string, context: TemplateContext): string | null {
  try {
    compileTemplate(source, context);
    return null;
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    return `${error.message} (at position ${error.position})`;
  }
}

export function urlTemplateProblem(url: string): FieldProblem | null {
  if (!hasTags(url)) return null;
  let template: Template;
  try {
    template = compileTemplate(url, 'url');
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    return { field: 'url', message: `${error.message} (at position ${error.position})` };
  }
  const first = template.tags[0];
  if (!first) return null;
  // The authority must be over (a "/" or "?" after scheme://host[:port]) before the first tag.
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*[/?]/.exec(url);
  if (!authority || authority[0].length > first.at) {
    return {
      field: 'url',
      message: `tags may stand only in the path and query, never in the scheme, host or port (tag {{${first.name}}} at position ${first.at + 1})`,
    };
  }
  const fragment = url.indexOf('#');
  const late = template.tags.find((t) => fragment !== -1 && t.at > fragment);
  if (late) return { field: 'url', message: `tags may not stand in the fragment (tag {{${late.name}}} at position ${late.at + 1})` };
  return null;
}

function bodyProblem(body: string, format: Format): FieldProblem | null {
  let template: Template;
  try {
    template = compileTemplate(body, format);
  } catch (error) {
    if (!(error instanceof TemplateError)) throw error;
    return { field: 'body', message: `${error.message} (at position ${error.position})` };
  }
  const sample = renderSample(template);
  if (format === 'json') {
    try {
      JSON.parse(sample.text);
    } catch (error) {
      const at = /position (\d+)/.exec((error as Error).message);
      const where = at ? ` (at position ${sample.origin(Number(at[1])) + 1})` : '';
      return { field: 'body', message: `is not JSON once its tags are filled in: ${(error as Error).message.replace(/ in JSON at position \d+.*$/, '')}${where}` };
    }
  }
  if (format === 'xml') {
    const result = XMLValidator.validate(sample.text);
    if (result !== true) {
      return { field: 'body', message: `is not well-formed XML: ${result.err.msg} (line ${result.err.line}, column ${result.err.col})` };
    }
  }
  return null;
}

/** A stored webhook, compiled for sending. */
export interface Shape {
  method: Method;
  url: Template | null;
  plainUrl: string;
  origin: string;
  /** "." and ".." segments the URL template's own text has in its path (tags must not add any). */
  dotSegments: number;
  format: Format;
  body: Template | null;
  headers: Array<[string, Template]>;
  credentials: WebhookCredentials;
  signing: boolean;
  missing: MissingPolicy;
  secret: string;
}

export function parseOptions(row: Pick<WebhookRow, 'options'>): WebhookOptions {
  return JSON.parse(row.options || '{}') as WebhookOptions;
}

export function parseCredentials(row: Pick<WebhookRow, 'credentials'>): WebhookCredentials {
  return JSON.parse(row.credentials || '{}') as WebhookCredentials;
}

/** Compiles a stored webhook (TemplateError only if it was stored before the checks above). */
export function shapeOf(row: WebhookRow): Shape {
  const options = parseOptions(row);
  const format = options.format ?? 'json';
  const url = hasTags(row.url) ? compileTemplate(row.url, 'url') : null;
  const headers = JSON.parse(row.headers) as Record<string, string>;
  return {
    method: row.method as Method,
    url,
    plainUrl: row.url,
    origin: new URL(url ? renderSample(url).text : row.url).origin,
    dotSegments: url ? dotSegmentsOf(renderSample(url).text) : 0,
    format,
    body: options.body === undefined ? null : compileTemplate(options.body, format),
    headers: Object.entries(headers).map(([name, value]) => [name, compileTemplate(value, 'header')]),
    credentials: parseCredentials(row),
    signing: options.signing ?? true,
    missing: options.missing ?? 'empty',
    secret: row.secret,
  };
}

const DOT_SEGMENT = /^(?:\.|%2e){1,2}$/i;

/** How many "." / ".." segments (as the WHATWG URL parser spells them) a URL's path has. */
function dotSegmentsOf(url: string): number {
  const path = url.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/, '').split(/[?#]/, 1)[0]!;
  return path.split('/').filter((segment) => DOT_SEGMENT.test(segment)).length;
}

export function viewOf(event: EventRecord, consumer: { id: string; name: string | null }): TemplateView {
  return {
    id: event.id,
    type: event.type,
    tenant: event.tenant,
    time: new Date(event.time).toISOString(),
    cursor: encodeCursor(event.pos),
    data: JSON.parse(event.data) as unknown,
    consumer,
  };
}

export interface OutgoingRequest {
  method: Method;
  url: string;
  headers: Record<string, string>;
  /** null: no body (GET and DELETE without a body template). */
  body: string | null;
}

/** One event's request; RenderError when the event cannot fill the templates. */
export function renderRequest(
  shape: Shape,
  event: EventRecord,
  consumer: { id: string; name: string | null },
  nowSeconds: number,
): OutgoingRequest {
  const needsView = shape.url !== null || shape.body !== null || shape.headers.some(([, t]) => t.tags.length > 0);
  const view = needsView ? viewOf(event, consumer) : null;
  const render = (t: Template) => renderTemplate(t, view!, shape.missing);

  const rendered = shape.url ? render(shape.url) : shape.plainUrl;
  // A value "." or ".." (or %2e spellings) standing as a path segment would be resolved away by
  // the URL parser, silently sending to another path: refused, like any value a context cannot carry.
  if (shape.url && dotSegmentsOf(rendered) > shape.dotSegments) {
    throw new RenderError('a tag in the URL path renders as a "." or ".." segment, which URLs resolve away (the request would go to another path)');
  }
  const auth = shape.credentials.auth;
  const keyInQuery = auth?.type === 'api_key' && auth.in === 'query';
  let href = shape.plainUrl; // a plain URL is stored normalised: no parse per delivery
  if (shape.url || keyInQuery) {
    const url = new URL(rendered);
    // Tags cannot reach the authority (checked at configuration); this holds it for stored rows too.
    if (url.origin !== shape.origin) throw new RenderError(`the rendered URL left ${shape.origin}`);
    if (keyInQuery) {
      // Appended as text: re-serialising searchParams would re-encode the rendered query.
      const pair = `${encodeURIComponent(auth.name)}=${encodeURIComponent(auth.value)}`;
      url.search = url.search ? `${url.search}&${pair}` : `?${pair}`;
    }
    href = url.href;
  }

  let body: string | null;
  if (shape.body) body = render(shape.body);
  else if (shape.method === 'GET' || shape.method === 'DELETE') body = null;
  else body = envelopeJson(event);

  const headers: Record<string, string> = {};
  // Rendered even without tags: a comment ({{! … }}) is dropped, as in a body or URL.
  for (const [name, template] of shape.headers) headers[name] = render(template);
  if (shape.credentials.secret_header) headers[shape.credentials.secret_header.name] = shape.credentials.secret_header.value;
  if (auth?.type === 'basic') headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  if (auth?.type === 'bearer') headers.authorization = `Bearer ${auth.token}`;
  if (auth?.type === 'api_key' && auth.in === 'header') headers[auth.name] = auth.value;
  if (body !== null) headers['content-type'] = CONTENT_TYPES[shape.format];
  if (shape.signing) Object.assign(headers, signatureHeaders(shape.secret, event.id, nowSeconds, body ?? ''));
  return { method: shape.method, url: href, headers, body };
}

const HIDDEN = '•••';

/** The request with every credential replaced (for previews and test answers). */
export function redacted(request: OutgoingRequest, shape: Shape): OutgoingRequest {
  const headers = { ...request.headers };
  const { auth, secret_header } = shape.credentials;
  if (auth?.type === 'basic') headers.authorization = `Basic ${HIDDEN}`;
  if (auth?.type === 'bearer') headers.authorization = `Bearer ${HIDDEN}`;
  if (auth?.type === 'api_key' && auth.in === 'header') headers[auth.name] = HIDDEN;
  if (secret_header) headers[secret_header.name] = HIDDEN;
  let url = request.url;
  if (auth?.type === 'api_key' && auth.in === 'query') {
    const pair = `${encodeURIComponent(auth.name)}=${encodeURIComponent(auth.value)}`;
    const at = url.lastIndexOf(pair);
    if (at !== -1) url = `${url.slice(0, at)}${encodeURIComponent(auth.name)}=${HIDDEN}${url.slice(at + pair.length)}`;
  }
  return { ...request, url, headers };
}

/** Every spelling of the credentials that could travel: as given, base64 (basic), percent-encoded (query). */
function credentialSpellings(credentials: WebhookCredentials): string[] {
  const { auth, secret_header } = credentials;
  const values: string[] = [];
  if (auth?.type === 'basic') values.push(auth.password, Buffer.from(`${auth.username}:${auth.password}`).toString('base64'));
  if (auth?.type === 'bearer') values.push(auth.token);
  if (auth?.type === 'api_key') values.push(auth.value, encodeURIComponent(auth.value));
  if (secret_header) values.push(secret_header.value);
  // Longest first, so a value that contains another is replaced whole.
  return [...new Set(values.filter((v) => v.length > 0))].sort((a, b) => b.length - a.length);
}

/**
 * The receiver's answer with the request's credentials replaced (a receiver that echoes the
 * request, as test endpoints do, must not put them in the attempt log or a test answer). A
 * credential cut by the 1 KiB bound is caught by its beginning at the end of the text.
 */
export function scrubbedResponse<R extends { headers: Record<string, string>; body: string; truncated: boolean } | null>(response: R, shape: Shape): R {
  const values = credentialSpellings(shape.credentials);
  if (!response || values.length === 0) return response;
  const scrub = (text: string, cut: boolean): string => {
    let out = text;
    for (const v of values) out = out.split(v).join(HIDDEN);
    if (cut) {
      for (const v of values) {
        for (let n = Math.min(v.length - 1, out.length); n >= 4; n--) {
          if (out.endsWith(v.slice(0, n))) return out.slice(0, out.length - n) + HIDDEN;
        }
      }
    }
    return out;
  };
  const headers = Object.fromEntries(Object.entries(response.headers).map(([k, v]) => [k, scrub(v, false)]));
  return { ...response, headers, body: scrub(response.body, response.truncated) };
}

/** What GET shows of the credentials: their kind and names, never a value. */
export function credentialsView(credentials: WebhookCredentials) {
  const { auth, secret_header } = credentials;
  return {
    auth:
      auth === undefined
        ? null
        : auth.type === 'basic'
          ? { type: 'basic' as const, username: auth.username }
          : auth.type === 'bearer'
            ? { type: 'bearer' as const }
            : { type: 'api_key' as const, in: auth.in, name: auth.name },
    secret_header: secret_header === undefined ? null : { name: secret_header.name },
  };
}

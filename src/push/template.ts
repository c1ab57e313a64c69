/**
 * Webhook templates: `{{path}}` tags over the event, escaped for where each one stands.
 *
 * 1. Parsing is Mustache's (the `mustache` package): tags and their positions, with its errors
 *    for unclosed tags. Only plain variable tags `{{path}}` and comments `{{! … }}` are taken;
 *    sections, partials, triple mustaches and delimiter changes are refused with their
 *    position. Nothing is ever evaluated: a tag names a path, and rendering looks it up.
 * 2. A path is dotted from a root: id, type, tenant, time, cursor, data (`data.ticket.id`,
 *    `data.items.0`) or consumer (`consumer.id`, `consumer.name`). Lookups follow own
 *    properties only, so `data.constructor` is missing rather than a function.
 * 3. Escaping follows the context (SPEC "Delivery shapes"): in JSON a tag inside a string is
 *    string-escaped and a tag standing as a value is the JSON value; XML-escaped in XML;
 *    form-encoded in form bodies; percent-encoded in URLs; header values are the text as it is,
 *    and refused when they would carry a control character (CR/LF).
 * 4. A missing path renders empty (`null` where a JSON value stands), or, with `missing: fail`,
 *    fails the delivery with an error naming the path.
 */
import Mustache from 'mustache';

// Mustache caches every template it parsed, for ever; pollgate keeps compiled templates itself.
(Mustache as { templateCache?: unknown }).templateCache = undefined;

export type TemplateContext = 'json' | 'xml' | 'form' | 'url' | 'header';
export type MissingPolicy = 'empty' | 'fail';

export const ROOTS = ['id', 'type', 'tenant', 'time', 'cursor', 'data', 'consumer'] as const;
const PATH = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/;

/** A template problem at configuration time; `position` counts characters from 1. */
export class TemplateError extends Error {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(message);
  }
}

/** A problem while rendering one event (a missing path under `missing: fail`, a value a context cannot carry). */
export class RenderError extends Error {}

interface Text {
  text: string;
  /** 0-based offset in the source. */
  at: number;
}

interface Tag {
  path: string[];
  /** The path as written, for messages. */
  name: string;
  /** 0-based offset of the tag in the source. */
  at: number;
  /** JSON only: the tag stands inside a string literal. */
  inString: boolean;
  /** XML only: the tag stands inside a CDATA section (where references are not read). */
  inCdata: boolean;
}

export interface Template {
  readonly source: string;
  readonly context: TemplateContext;
  readonly parts: ReadonlyArray<Text | Tag>;
  readonly tags: readonly Tag[];
}

/** The view a template renders: the envelope with `data` parsed, and the consumer. */
export interface TemplateView {
  id: string;
  type: string;
  tenant: string;
  time: string;
  cursor: string;
  data: unknown;
  consumer: { id: string; name: string | null };
}

const UNSUPPORTED: Record<string, string> = {
  '#': 'sections ({{#…}})',
  '^': 'inverted sections ({{^…}})',
  '/': 'section ends ({{/…}})',
  '>': 'partials ({{>…}})',
  '&': 'unescaped tags ({{{…}}} or {{&…}})',
  '=': 'delimiter changes ({{=…=}})',
};

/** Parses and checks a template; TemplateError names the problem and its position. */
export function compileTemplate(source: string, context: TemplateContext): Template {
  let tokens: unknown[][];
  try {
    tokens = Mustache.parse(source) as unknown as unknown[][];
  } catch (error) {
    const message = (error as Error).message;
    const at = /at (\d+)$/.exec(message);
    throw new TemplateError(`${message.replace(/ at \d+$/, '')} (tags are written {{path}})`, at ? Number(at[1]) + 1 : 1);
  }
  const parts: Array<Text | Tag> = [];
  const tags: Tag[] = [];
  const json = context === 'json' ? new JsonStringTracker() : null;
  const xml = context === 'xml' ? new XmlSectionTracker() : null;
  for (const token of tokens) {
    const [kind, value, start] = token as [string, string, number];
    if (kind === 'text') {
      parts.push({ text: value, at: start });
      json?.feed(value);
      xml?.feed(value);
      continue;
    }
    if (kind === '!') continue;
    if (kind !== 'name') {
      throw new TemplateError(
        `${UNSUPPORTED[kind] ?? `"${kind}" tags`} are not supported: templates hold plain {{path}} tags only`,
        start + 1,
      );
    }
    const problem = pathProblem(value);
    if (problem) throw new TemplateError(`tag {{${value}}}: ${problem}`, start + 1);
    if (json?.escaped) throw new TemplateError(`tag {{${value}}} follows a backslash inside a JSON string`, start + 1);
    if (xml?.inComment) throw new TemplateError(`tag {{${value}}} stands in an XML comment, which cannot carry every value`, start + 1);
    const tag: Tag = { path: value.split('.'), name: value, at: start, inString: json?.inString ?? false, inCdata: xml?.inCdata ?? false };
    parts.push(tag);
    tags.push(tag);
  }
  return { source, context, parts, tags };
}

function pathProblem(name: string): string | null {
  if (name === '') return 'is empty; name a path such as {{data.ticket.id}}';
  if (!PATH.test(name)) return 'is not a dotted path (letters, digits, _ and -, separated by dots)';
  const root = name.split('.')[0]!;
  if (!(ROOTS as readonly string[]).includes(root)) return `does not start with one of ${ROOTS.join(', ')}`;
  return null;
}

/** Follows an XML template's own text far enough to tell whether a position is in a CDATA section or a comment. */
class XmlSectionTracker {
  private text = '';
  feed(text: string): void {
    this.text += text;
  }
  private within(open: string, close: string): boolean {
    const at = this.text.lastIndexOf(open);
    return at !== -1 && this.text.indexOf(close, at + open.length) === -1;
  }
  get inCdata(): boolean {
    return this.within('<![CDATA[', ']]>');
  }
  get inComment(): boolean {
    return this.within('<!--', '-->');
  }
}

/** Follows a JSON text far enough to tell whether a position is inside a string literal. */
class JsonStringTracker {
  inString = false;
  escaped = false;
  feed(text: string): void {
    for (const ch of text) {
      if (!this.inString) {
        if (ch === '"') this.inString = true;
      } else if (this.escaped) {
        this.escaped = false;
      } else if (ch === '\\') {
        this.escaped = true;
      } else if (ch === '"') {
        this.inString = false;
      }
    }
  }
}

const MISSING = Symbol('missing');

function lookup(view: TemplateView, path: readonly string[]): unknown {
  let at: unknown = view;
  for (const key of path) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key)) return MISSING;
    at = (at as Record<string, unknown>)[key];
  }
  return at === undefined ? MISSING : at;
}

/** The value as text: strings as they are, anything else as its JSON. */
function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null) return '';
  return JSON.stringify(value);
}

// CR, LF and tab as character references: a parser turns a literal CR LF into LF, and inside an
// attribute any of the three into a space; written as references they arrive as sent.
const XML_ESCAPES: Record<string, string> = {
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;', '\r': '&#13;', '\n': '&#10;', '\t': '&#9;',
};
/** Characters XML 1.0 cannot carry at all, escaped or not. */
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
/** Characters a header value cannot carry (controls, and above U+00FF). */
const NOT_HEADER_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

function escapeFor(tag: Tag, context: TemplateContext, value: unknown): string {
  switch (context) {
    case 'json':
      if (tag.inString) return value === MISSING ? '' : JSON.stringify(asText(value)).slice(1, -1);
      return value === MISSING ? 'null' : JSON.stringify(value);
    case 'xml': {
      const text = value === MISSING ? '' : asText(value);
      const bad = NOT_XML_CHAR.exec(text);
      if (bad) throw new RenderError(`{{${tag.name}}} holds ${codePoint(text, bad.index)}, which XML 1.0 cannot carry`);
      // In CDATA nothing is unescaped: "]]>" and CR (which a parser would turn into LF) are
      // written outside the section, between two sections.
      if (tag.inCdata) return text.replace(/]]>/g, ']]]]><![CDATA[>').replace(/\r/g, ']]>&#13;<![CDATA[');
      return text.replace(/[&<>"'\r\n\t]/g, (c) => XML_ESCAPES[c]!);
    }
    case 'form':
      return percentEncoded(tag, value === MISSING ? '' : asText(value)).replace(/%20/g, '+');
    case 'url':
      return percentEncoded(tag, value === MISSING ? '' : asText(value));
    case 'header': {
      const text = value === MISSING ? '' : asText(value);
      const bad = NOT_HEADER_CHAR.exec(text);
      if (bad) throw new RenderError(`{{${tag.name}}} holds ${codePoint(text, bad.index)}, which a header value cannot carry`);
      return text;
    }
  }
}

/** encodeURIComponent, with a lone surrogate (which it throws URIError on) refused as a render problem. */
function percentEncoded(tag: Tag, text: string): string {
  const lone = LONE_SURROGATE.exec(text);
  if (lone) throw new RenderError(`{{${tag.name}}} holds ${codePoint(text, lone.index)} (a lone surrogate), which cannot be percent-encoded`);
  return encodeURIComponent(text);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function codePoint(text: string, index: number): string {
  return `U+${text.codePointAt(index)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

export function renderTemplate(template: Template, view: TemplateView, missing: MissingPolicy = 'empty'): string {
  let out = '';
  for (const part of template.parts) {
    if ('text' in part) {
      out += part.text;
      continue;
    }
    const value = lookup(view, part.path);
    if (value === MISSING && missing === 'fail') {
      throw new RenderError(`{{${part.name}}} is missing in event ${view.id} (the webhook has missing: "fail")`);
    }
    out += escapeFor(part, template.context, value);
  }
  return out;
}

/**
 * Renders with a stand-in for every tag (a string, or `0` where a JSON value stands): what a
 * template produces at the least, for checking its shape at configuration time. `origin`
 * maps an offset in the result back to the source (for positions in messages).
 */
export function renderSample(template: Template, stand = 'x'): { text: string; origin: (offset: number) => number } {
  let text = '';
  const marks: Array<{ from: number; at: number; tag: boolean }> = [];
  for (const part of template.parts) {
    marks.push({ from: text.length, at: part.at, tag: !('text' in part) });
    if ('text' in part) text += part.text;
    else text += template.context === 'json' && !part.inString ? '0' : stand;
  }
  const origin = (offset: number): number => {
    let found: (typeof marks)[number] | undefined;
    for (const m of marks) if (m.from <= offset) found = m;
    if (!found) return 0;
    return found.tag ? found.at : found.at + (offset - found.from);
  };
  return { text, origin };
}

/**
 * Browsing a tenant's log (admin key): GET /v1/tenants/:tenant/events, newest first, for the
 * ops page's event browser and for anyone checking what a producer sent. Reading here is not
 * consuming: no cursor moves, no poll is woken or ended.
 *
 * 1. Bounded: at most MAX_LIMIT events a page, and one request examines at most SCAN_BUDGET
 *    events (each read bounded by SCAN_BYTES of data), so a type filter that rarely matches
 *    never turns a request into a walk over the whole log. Such a page may come back short,
 *    or empty, with a `next` cursor: the scan stopped there, and more may match further back.
 * 2. Paging goes backwards: `next` is passed as `before` (exclusive). Every event before it is
 *    older than everything the page examined, so paging neither skips nor repeats an event.
 *    `next` is null once the scan reached the oldest retained event.
 * 3. `type` takes the patterns of consumer filters (filter/filter.ts: `*` one segment, a final
 *    `**` one or more), several separated by commas, compiled by the same matcher.
 * 4. `at` names one event by its cursor (e.g. a delivery attempt's): the page holds that event,
 *    or nothing when retention has removed it.
 * 5. A tenant nothing was ever published for is 404, so a typo in the tenant reads as one.
 */
import { Hono } from 'hono';
import { cursorPosition } from '../consumers/positions.ts';
import { ApiError, invalidField } from '../errors.ts';
import { compileFilter, FilterError, parseFilter, type Matcher } from '../filter/filter.ts';
import { recordMatches } from '../filter/record.ts';
import type { Services } from '../services.ts';
import { encodeCursor } from '../store/cursor.ts';
import { envelopeJson } from '../store/envelope.ts';
import type { EventRecord, Page, Store } from '../store/store.ts';
import { requireAdmin, type Env } from './auth.ts';
import { tenantSchema } from './publish.ts';
import { parseInput } from './validate.ts';

export const MAX_LIMIT = 100;
const DEFAULT_LIMIT = 50;
/** Events one request may examine (matching or not). */
export const SCAN_BUDGET = 5_000;
/** Rows per read while a filter skips events, and the data bytes one read may bring. */
const SCAN_CHUNK = 500;
const SCAN_BYTES = 1 << 20;

export interface Browsed {
  events: EventRecord[];
  /** Pass as `before` for older events; null: nothing older is retained (or `at` was asked). */
  next: number | null;
  head: number;
  trimmedThrough: number;
}

export function tenantEventRoutes(s: Services): Hono<Env> {
  const app = new Hono<Env>();
  app.get('/v1/tenants/:tenant/events', async (c) => {
    requireAdmin(c);
    const tenant = parseInput(tenantSchema, c.req.param('tenant'), 'tenant');
    const q = c.req.query();
    const limit = q.limit === undefined ? DEFAULT_LIMIT : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw invalidField('limit', `must be an integer from 1 to ${MAX_LIMIT}`);
    }
    if (q.at !== undefined && q.before !== undefined) throw invalidField('at', 'names one event; it does not page (leave out `before`)');
    const matcher = typeMatcher(q.type);

    const browsed =
      q.at !== undefined
        ? await eventAt(s.store, tenant, await cursorPosition(s.store, tenant, q.at, 'at'), matcher)
        : await browse(s.store, tenant, q.before === undefined ? Number.MAX_SAFE_INTEGER : await cursorPosition(s.store, tenant, q.before, 'before'), limit, matcher);
    if (browsed.head === 0 && browsed.trimmedThrough === 0) {
      throw new ApiError('not_found', `nothing was ever published for tenant "${tenant}"`);
    }
    // Built as text, like a poll answer: the stored data goes out byte for byte.
    const body =
      `{"events":[${browsed.events.map(envelopeJson).join(',')}],` +
      `"next":${browsed.next === null ? 'null' : `"${encodeCursor(browsed.next)}"`},` +
      `"head":"${encodeCursor(browsed.head)}","earliest":"${encodeCursor(browsed.trimmedThrough)}"}`;
    return c.body(body, 200, { 'content-type': 'application/json' });
  });
  return app;
}

/** The `type` query as a matcher (all types when absent); a bad pattern is a 400 naming `type`. */
function typeMatcher(text: string | undefined): Matcher {
  if (text === undefined || text.trim() === '') return compileFilter(null);
  const types = text.split(',').map((t) => t.trim()).filter((t) => t !== '');
  try {
    return compileFilter(parseFilter({ types }));
  } catch (error) {
    if (error instanceof FilterError) throw invalidField('type', error.message.replace(/^types(\[\d+\])?: /, ''));
    throw error;
  }
}

/** Matching events before `before`, newest first (see 1. and 2.). */
export async function browse(store: Store, tenant: string, before: number, limit: number, matcher: Matcher): Promise<Browsed> {
  const events: EventRecord[] = [];
  let scanned = 0;
  let pos = before;
  let page: Page | null = null;
  for (;;) {
    const chunk = matcher.matchesAll ? limit - events.length : SCAN_CHUNK;
    page = await store.readBefore(tenant, pos, chunk, SCAN_BYTES);
    const olderRetained = (p: number) => p - 1 > page!.trimmedThrough;
    for (const r of page.records) {
      scanned += 1;
      pos = r.pos;
      if (!recordMatches(matcher, r)) continue;
      events.push(r);
      if (events.length === limit) return done(olderRetained(r.pos) ? r.pos : null);
    }
    if (page.records.length < chunk && !page.cut) return done(null);
    if (scanned >= SCAN_BUDGET) return done(olderRetained(pos) ? pos : null);
  }
  function done(next: number | null): Browsed {
    return { events, next, head: page!.head, trimmedThrough: page!.trimmedThrough };
  }
}

/** The one event at pos, if it is retained and matches (see 4.). */
async function eventAt(store: Store, tenant: string, pos: number, matcher: Matcher): Promise<Browsed> {
  const page = pos === 0 ? await store.read(tenant, 0, 0) : await store.read(tenant, pos - 1, 1);
  const hit = page.records.filter((r) => r.pos === pos && recordMatches(matcher, r));
  return { events: hit, next: null, head: page.head, trimmedThrough: page.trimmedThrough };
}

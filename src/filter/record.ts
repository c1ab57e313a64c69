/**
 * Applies a compiled filter to a stored event. The view a filter sees (ISO time, parsed data)
 * is built at most once per record and shared by every matcher that needs it, so waking a
 * thousand filtered polls parses an event's data once, not a thousand times.
 */
import type { Matcher } from './filter.ts';
import type { EventRecord } from '../store/store.ts';

type View = Parameters<Matcher['matches']>[0];
const views = new WeakMap<EventRecord, View>();

function viewOf(record: EventRecord, needsData: boolean): View {
  let view = views.get(record);
  if (!view) {
    view = { id: record.id, type: record.type, tenant: record.tenant, time: new Date(record.time).toISOString(), data: undefined };
    views.set(record, view);
  }
  if (needsData && view.data === undefined) view.data = JSON.parse(record.data);
  return view;
}

export function recordMatches(matcher: Matcher, record: EventRecord): boolean {
  if (matcher.matchesAll) return true;
  if (!matcher.matchesType(record.type)) return false;
  return matcher.matches(viewOf(record, matcher.needsData));
}

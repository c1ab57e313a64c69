/**
 * Compiled filters, shared by every consumer with the same stored filter text, so a poll
 * does not recompile its filter on every request.
 */
import { compileFilter, type Matcher } from '../filter/filter.ts';

export interface Matchers {
  get(filterText: string | null): Matcher;
}

const MAX_CACHED = 10_000;

export function createMatchers(): Matchers {
  const all = compileFilter(null);
  const cache = new Map<string, Matcher>();
  return {
    get(filterText) {
      if (filterText === null) return all;
      let m = cache.get(filterText);
      if (!m) {
        if (cache.size >= MAX_CACHED) cache.clear();
        m = compileFilter(JSON.parse(filterText));
        cache.set(filterText, m);
      }
      return m;
    },
  };
}

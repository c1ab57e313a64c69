/**
 * Cursors name positions in one tenant's log. To clients they are opaque strings; inside they
 * are "t" and the position as 16 zero-padded decimal digits, so that string order is log
 * order within a tenant (handy in logs, though clients must not parse them).
 * "t0000000000000000" is the position before the tenant's first event.
 *
 * Cursors issued before positions were per tenant are 16 bare digits naming a global
 * sequence number; they still work: the store translates them to the tenant's position.
 */
const WIDTH = 16;
const CURRENT = /^t\d{16}$/;
const LEGACY = /^\d{16}$/;

export type DecodedCursor = { pos: number } | { legacySeq: number };

export function encodeCursor(pos: number): string {
  return `t${String(pos).padStart(WIDTH, '0')}`;
}

/** What a cursor names, or null when the text is not a cursor of ours. */
export function decodeCursor(text: string): DecodedCursor | null {
  if (CURRENT.test(text)) {
    const pos = Number(text.slice(1));
    return Number.isSafeInteger(pos) ? { pos } : null;
  }
  if (LEGACY.test(text)) {
    const legacySeq = Number(text);
    return Number.isSafeInteger(legacySeq) ? { legacySeq } : null;
  }
  return null;
}

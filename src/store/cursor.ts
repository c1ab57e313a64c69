/**
 * Cursors name log positions. To clients they are opaque strings; inside they are the
 * event's seq written as 16 zero-padded decimal digits, so that string order is log order
 * (handy in logs and for clients that compare, though they must not parse).
 * "0000000000000000" is the position before the first event.
 */
const WIDTH = 16;
const PATTERN = /^\d{16}$/;

export function encodeCursor(seq: number): string {
  return String(seq).padStart(WIDTH, '0');
}

/** The seq a cursor names, or null when the text is not a cursor of ours. */
export function decodeCursor(text: string): number | null {
  if (!PATTERN.test(text)) return null;
  const seq = Number(text);
  return Number.isSafeInteger(seq) ? seq : null;
}

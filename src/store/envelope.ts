/**
 * The envelope exactly as clients see it on the poll and the push path. Remembered on the
 * record: a commit's records go to the producer's answer, every poll they wake and the push
 * bridge, and fan-out to 1,000 polls should not build one 1,000 times.
 */
import { encodeCursor } from './cursor.ts';
import type { EventRecord } from './store.ts';

export function envelopeJson(e: EventRecord): string {
  // id, type and tenant are validated to JSON-safe character sets on the way in.
  return (e.envelope ??= `{"id":"${e.id}","cursor":"${encodeCursor(e.pos)}","type":"${e.type}","tenant":"${e.tenant}","time":"${isoTime(e.time)}","data":${e.data}}`);
}

/** The events of one commit (and of one stored page, mostly) share their millisecond: format it once. */
let lastTime = Number.NaN;
let lastIso = '';
function isoTime(ms: number): string {
  if (ms !== lastTime) {
    lastIso = new Date(ms).toISOString();
    lastTime = ms;
  }
  return lastIso;
}

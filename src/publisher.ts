/**
 * Publishing: append validated events durably, then make them visible and tell whoever
 * reads the log (the long-poll hub, the push bridge). The order is the guarantee: COMMIT
 * (fsync), then the head moves and readers are told, then the producer gets its answer.
 */
import { customAlphabet } from 'nanoid';
import type { Clock } from './clock.ts';
import type { Alongside, Appended, EventRecord, NewEvent, Store } from './store/store.ts';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'; // ascending in ASCII
const randomPart = customAlphabet(BASE62, 10);
let lastMs = 0;
let counter = 0;
/** `evt_` + lastMs in base62: the same for every id of one millisecond. */
let msPrefix = '';

/**
 * evt_ + 8 characters of milliseconds + 3 of a counter + 10 random: ids sort by creation time
 * within a process, so each new id lands at the end of its tenant's part of the (tenant, id)
 * index instead of at a random page (random ids made large logs append several times slower).
 * The random part keeps ids unguessable and unique across restarts.
 */
export function newEventId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
    msPrefix = `evt_${base62(lastMs, 8)}`;
  } else {
    counter = (counter + 1) % 238_328; // 62^3
  }
  return `${msPrefix}${base62(counter, 3)}${randomPart()}`;
}

function base62(n: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = BASE62[n % 62]! + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/**
 * Appends events (naming those without an id in place); `alongside` commits in the same transaction (all or nothing with them),
 * for changes that must commit together with an event.
 */
export type Publish = (events: NewEvent[], alongside?: Alongside) => Promise<Appended[]>;

export type CommitListener = (records: readonly EventRecord[]) => void;

export function createPublisher(deps: {
  store: Store;
  clock: Clock;
  listeners: CommitListener[];
}): Publish {
  const { store, clock, listeners } = deps;
  return async (events, alongside) => {
    const now = clock.now();
    // The events are the caller's to give away: named in place, no copy per event.
    for (const e of events) if (e.id === undefined) e.id = newEventId(now);
    const appended = await store.append(events, now, alongside);
    const fresh: EventRecord[] = [];
    for (const a of appended) if (!a.duplicate) fresh.push(a.record);
    // Other nodes hear of the commit from the engine (store.signals); this node's readers now.
    if (fresh.length > 0) for (const listener of listeners) listener(fresh);
    return appended;
  };
}

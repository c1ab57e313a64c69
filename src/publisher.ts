/**
 * Publishing: append validated events durably, then make them visible and tell whoever
 * reads the log (the long-poll hub, the push bridge). The order is the guarantee: COMMIT
 * (fsync), then the head moves and readers are told, then the producer gets its answer.
 */
import { customAlphabet } from 'nanoid';
import type { Clock } from './clock.ts';
import type { Db } from './store/db.ts';
import type { Appended, EventRecord, Log, NewEvent } from './store/events.ts';
import type { Writer } from './store/writer.ts';

const eventId = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 16);
export const newEventId = (): string => `evt_${eventId()}`;

/**
 * Appends events; `alongside` runs in the same transaction (all or nothing with them),
 * for changes that must commit together with an event.
 */
export type Publish = (events: NewEvent[], alongside?: (db: Db) => void) => Promise<Appended[]>;

export type CommitListener = (records: readonly EventRecord[]) => void;

export function createPublisher(deps: {
  log: Log;
  writer: Writer;
  clock: Clock;
  listeners: CommitListener[];
}): Publish {
  const { log, writer, clock, listeners } = deps;
  return (events, alongside) =>
    writer.write(
      (db) => {
        const appended = log.append(events, clock.now(), newEventId);
        alongside?.(db);
        return appended;
      },
      (appended) => {
        const fresh = appended.filter((a) => !a.duplicate).map((a) => a.record);
        if (fresh.length === 0) return;
        log.committed(fresh);
        for (const listener of listeners) listener(fresh);
      },
    );
}

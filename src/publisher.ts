/**
 * Publishing: append validated events durably, then make them visible and wake waiting polls.
 * The order is the guarantee: COMMIT (fsync), then head moves and the hub is told, then the
 * producer gets its answer.
 */
import { customAlphabet } from 'nanoid';
import type { Clock } from './clock.ts';
import type { Hub } from './hub/hub.ts';
import type { Appended, Log, NewEvent } from './store/events.ts';
import type { Writer } from './store/writer.ts';

// URL-safe alphabet without '-' and '_' so generated ids read as one word.
const eventId = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 16);
export const newEventId = (): string => `evt_${eventId()}`;

export type Publish = (events: NewEvent[]) => Promise<Appended[]>;

export function createPublisher(deps: { log: Log; writer: Writer; hub: Hub; clock: Clock }): Publish {
  const { log, writer, hub, clock } = deps;
  return (events) =>
    writer.write(
      () => log.append(events, clock.now(), newEventId),
      (appended) => {
        const fresh = appended.filter((a) => !a.duplicate).map((a) => a.record);
        if (fresh.length === 0) return;
        log.committed(fresh);
        hub.publish(fresh);
      },
    );
}

/**
 * Makes the polls this node holds visible to every node: while a poll waits in the hub, the
 * store carries its deadline (store.markHeld), which the ops view reads as `polling`. A
 * decorator around the hub, so the hub itself stays free of storage.
 */
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import type { Hub } from './hub.ts';

export function showHeldPolls(hub: Hub, store: Store, clock: Clock): Hub {
  return {
    ...hub,
    async wait(req) {
      store.markHeld(req.ticket, clock.now() + req.waitMs);
      try {
        return await hub.wait(req);
      } finally {
        store.markHeld(req.ticket, null);
      }
    },
  };
}

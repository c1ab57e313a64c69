/**
 * Makes the polls this node holds visible to every node: while a poll waits in the hub, the
 * store carries its deadline (store.markHeld), which the ops view reads as `polling`. A
 * decorator around the hub, so the hub itself stays free of storage.
 */
import type { Clock } from '../clock.ts';
import type { Store } from '../store/store.ts';
import type { Hub, WaitOutcome, WaitRequest } from './hub.ts';

export function showHeldPolls(hub: Hub, store: Store, clock: Clock): Hub {
  // A callback, not an async wrapper: no suspended frame per held poll.
  function hold(req: WaitRequest, done: (outcome: WaitOutcome) => void): void {
    store.markHeld(req.ticket, clock.now() + req.waitMs);
    hub.hold(req, (outcome) => {
      store.markHeld(req.ticket, null);
      done(outcome);
    });
  }
  return {
    ...hub,
    hold,
    wait: (req) => new Promise((resolve) => hold(req, resolve)),
  };
}

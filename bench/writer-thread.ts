/**
 * writer-thread: where the append commit runs, A/B. One pollgate as it is (group commit on
 * the event loop) and one with POLLGATE_EXPERIMENT_WRITER_THREAD=1 (appends committed by a
 * worker thread on its own connection, src/store/sqlite/append-thread.ts), under the publish
 * and batch loads in alternating runs (lib/ab.ts). Ratio: thread ÷ loop.
 */
import { abPublish } from './lib/ab.ts';
import type { Scenario } from './lib/scenario.ts';
import { startPollgate } from './lib/servers.ts';

export const scenario: Scenario = {
  name: 'writer-thread',
  title: 'A/B: append commit on the event loop vs in a worker thread (experiment)',
  async run(ctx) {
    const { rows, budgets } = await abPublish(
      ctx,
      'writer thread A/B',
      { name: 'commit on the loop', start: (p) => startPollgate({ ...p }) },
      { name: 'writer thread', start: (p) => startPollgate({ ...p, env: { POLLGATE_EXPERIMENT_WRITER_THREAD: '1' } }) },
    );
    return { rows, details: { budgets } };
  },
};

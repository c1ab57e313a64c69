/**
 * What the HTTP edge and background tasks are given: the parts of one running gateway.
 * Built once in pollgate.ts; nothing here reads the environment.
 */
import type { Logger } from 'pino';
import type { Clock } from './clock.ts';
import type { Config } from './config.ts';
import type { Matchers } from './consumers/matchers.ts';
import type { PageBudget } from './consumers/page-budget.ts';
import type { Metrics } from './metrics.ts';
import type { Hub } from './hub/hub.ts';
import type { Publish } from './publisher.ts';
import type { Bridge } from './push/bridge.ts';
import type { Deliverer } from './push/deliver.ts';
import type { Resolver } from './push/targets.ts';
import type { Store } from './store/store.ts';

export interface Services {
  config: Config;
  clock: Clock;
  logger: Logger;
  store: Store;
  hub: Hub;
  publish: Publish;
  matchers: Matchers;
  /** Poll answers not yet sent, all clients together (POLLGATE_PAGE_BYTES_IN_FLIGHT). */
  pages: PageBudget;
  bridge: Bridge;
  /** Sends webhook requests (the bridge's, and the admin's test sends). */
  deliverer: Deliverer;
  adminKeyHash: Buffer;
  metrics: Metrics;
  /** DNS for webhook target checks; undefined: the system's. */
  resolve: Resolver | undefined;
}

/**
 * One gateway: createPollgate(config) wires the store, the hub and the HTTP edge and returns
 * { app, start, stop }. main.ts is the thin entry point around it; tests build their own.
 *
 * stop() is the SIGTERM path: refuse new requests (503), stop background work, answer held
 * polls with what they have (200), let queued commits finish, close the connections (idle
 * keep-alive ones too, which server.close() alone would wait on forever), close the database.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { nanoid } from 'nanoid';
import { serve } from '@hono/node-server';
import type { Logger } from 'pino';
import { generateAdminKey, hashKey, loadAdminKey } from './auth/keys.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import { createMatchers } from './consumers/matchers.ts';
import { PageBudget } from './consumers/page-budget.ts';
import { scan } from './consumers/poll.ts';
import { createMetrics } from './metrics.ts';
import { createApp } from './http/app.ts';
import { capConnections, serverOptions } from './http/server-limits.ts';
import { createHub } from './hub/hub.ts';
import { createPublisher, type CommitListener } from './publisher.ts';
import { createBridge } from './push/bridge.ts';
import { createDeliverer } from './push/deliver.ts';
import { createAlertSender } from './push/alert-sender.ts';
import type { Resolver } from './push/targets.ts';
import { VERSION } from './version.ts';
import type { Services } from './services.ts';
import { linkNodes } from './hub/cluster.ts';
import { createLogger } from './log.ts';
import { showHeldPolls } from './hub/visible-polls.ts';
import { openStore } from './store/open.ts';
import { createRetention } from './store/retention.ts';
import { watchWrites } from './store/write-health.ts';
import type { Store } from './store/store.ts';

export interface PollgateOptions {
  clock?: Clock;
  logger?: Logger;
  /** DNS for webhook targets (tests inject one to play DNS rebinding). */
  resolve?: Resolver;
  /** Called once with a freshly generated admin key (main prints it). */
  onAdminKeyGenerated?: (key: string, file: string) => void;
}

export interface Pollgate {
  app: ReturnType<typeof createApp>;
  services: Services;
  /** Listens on config.host:config.port; answers the bound address. */
  start(): Promise<AddressInfo>;
  stop(): Promise<void>;
}

export async function createPollgate(config: Config, options: PollgateOptions = {}): Promise<Pollgate> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.logLevel, config.logFormat);
  // Start and stop lines are shown at any level but silent: an operator who asked for warnings
  // only still needs to see where the server listens and that it stopped.
  const lifecycleLog = logger.level === 'silent' ? logger : logger.child({}, { level: 'info' });
  const metrics = createMetrics();
  const nodeId = `${hostname()}-${process.pid}-${nanoid(6)}`;
  const { store, health: writes } = watchWrites(
    await openStore(config, {
      nodeId,
      logger,
      onCommit(jobs, seconds) {
        metrics.commitGroupSize.observe(jobs);
        metrics.commitDuration.observe(seconds);
      },
    }),
    clock,
    (failing) =>
      failing
        ? logger.error({ reason: failing.reason }, 'database writes are failing; /readyz answers 503 until one goes through')
        : logger.info('database writes go through again'),
  );
  let adminKeyHash: Buffer;
  try {
    adminKeyHash = await adminKey(config, store, options);
  } catch (error) {
    await store.close();
    throw error;
  }

  const matchers = createMatchers();
  const hub = showHeldPolls(
    createHub({
      clock,
      read: (tenant, position, limit, matcher) => scan(store, tenant, position, limit, matcher),
      readMany: (reads) => store.readMany(reads),
      onWake: (seconds) => metrics.wakeLatency.observe(seconds),
    }),
    store,
    clock,
  );
  const nodeLink = linkNodes(store, hub, { logger });
  const listeners: CommitListener[] = [hub.publish];
  const publish = createPublisher({ store, clock, listeners });
  const deliverer = createDeliverer({
    allowPrivateTargets: config.allowPrivateTargets,
    userAgent: `pollgate/${VERSION}`,
    ...(options.resolve ? { resolve: options.resolve } : {}),
  });
  // Alerts go to the operator's own URL, which may be on a private network.
  const alertDeliverer = config.alertUrl ? createDeliverer({ allowPrivateTargets: true, userAgent: `pollgate/${VERSION}` }) : null;
  const alerts = alertDeliverer
    ? createAlertSender({ url: config.alertUrl!, secret: config.alertSecret!, deliverer: alertDeliverer, logger })
    : undefined;
  const bridge = await createBridge({
    store,
    clock,
    logger,
    publish,
    matchers,
    deliverer,
    concurrency: config.pushConcurrency,
    readAheadBytes: config.pushReadAheadBytes,
    retryScheduleMs: config.retryScheduleMs,
    retryMaxAgeMs: config.retryMaxAgeMs,
    alertPolicy: { enabled: true, failures: config.alertFailures, windowMs: config.alertWindowMs, debounceMs: config.alertDebounceMs },
    alerts,
    leaseTtlMs: config.leaseTtlMs,
    onAttempt: (o) => metrics.deliveries.inc({ outcome: o.ok ? 'ok' : (o.error ?? 'error') }),
  });
  listeners.push(bridge.notify);
  const services: Services = {
    config,
    clock,
    logger,
    store,
    hub,
    publish,
    matchers,
    pages: new PageBudget(config.pageBytesInFlight),
    bridge,
    deliverer,
    adminKeyHash,
    resolve: options.resolve,
    metrics,
  };
  metrics.bind(services);
  const retention = createRetention({
    store,
    clock,
    retentionMs: config.retentionMs,
    onError: (err) => logger.error({ err }, 'retention failed'),
    onTrimmed: (removed) => logger.debug({ removed, olderThanMs: config.retentionMs }, 'retention removed old events and attempt records'),
  });

  let closing = false;
  let server: Server | null = null;
  const app = createApp(services, { isClosing: () => closing, writes });

  return {
    app,
    services,

    start() {
      return new Promise((resolve, reject) => {
        const s = serve({ fetch: app.fetch, hostname: config.host, port: config.port, ...serverOptions(config) }, (info) => {
          retention.start();
          void bridge.start();
          const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${info.port}`;
          lifecycleLog.info(
            // The message stays exactly this: scripts wait for it and read `port` from the line.
            { url, ui: `${url}/ui`, host: config.host, port: info.port, engine: store.engine, node: store.nodeId, ...(store.engine === 'sqlite' ? { dataDir: config.dataDir } : {}) },
            'pollgate listening',
          );
          if (config.allowPrivateTargets) {
            logger.warn('POLLGATE_ALLOW_PRIVATE_TARGETS is on: webhooks may target loopback, private and metadata addresses; turn it off unless every admin is trusted');
          }
          resolve(info);
        }) as Server;
        s.once('error', reject);
        capConnections(s, config, logger);
        server = s;
      });
    },

    async stop() {
      if (closing) return;
      closing = true; // from here on, new requests are answered 503
      retention.stop();
      nodeLink.stop();
      hub.shutdown();
      // Attempts in flight end at once (they are retried after a restart). The port stays bound
      // until the work that uses the database has stopped, so no second instance can start
      // beside this one while it still pushes.
      await bridge.stop();
      await deliverer.close();
      await alerts?.close();
      await alertDeliverer?.close();
      if (server) {
        const s = server;
        const closed = new Promise<void>((resolve) => s.close(() => resolve()));
        s.closeIdleConnections();
        // Answered polls leave their connections idle a moment later; close those too.
        const sweep = setInterval(() => s.closeIdleConnections(), 50);
        const cut = setTimeout(() => s.closeAllConnections(), config.shutdownTimeoutMs / 2);
        await closed;
        clearInterval(sweep);
        clearTimeout(cut);
      }
      await store.close();
      lifecycleLog.info('pollgate stopped');
    },
  };
}

/**
 * The admin key's hash: a configured key wins; otherwise SQLite keeps a generated key in the
 * data directory (mode 0600) and PostgreSQL keeps only its hash in the database, generated by
 * the first node to start, so every node accepts it. Either way it is printed once.
 */
async function adminKey(config: Config, store: Store, options: PollgateOptions): Promise<Buffer> {
  if (store.engine === 'sqlite' || config.adminKey) {
    const admin = loadAdminKey(config.dataDir, config.adminKey);
    if (admin.generated) options.onAdminKeyGenerated?.(admin.generated, `${config.dataDir}/admin.key, mode 0600`);
    return admin.hash;
  }
  const candidate = generateAdminKey();
  const hash = hashKey(candidate).toString('base64');
  const stored = await store.setSettingIfAbsent('admin_key_hash', hash);
  if (stored === hash) options.onAdminKeyGenerated?.(candidate, 'the database (as a hash)');
  return Buffer.from(stored, 'base64');
}

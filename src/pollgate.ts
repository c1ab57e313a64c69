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
import { serve } from '@hono/node-server';
import pino, { type Logger } from 'pino';
import { loadAdminKey } from './auth/keys.ts';
import { systemClock, type Clock } from './clock.ts';
import type { Config } from './config.ts';
import { createMatchers } from './consumers/matchers.ts';
import { createMetrics } from './metrics.ts';
import { createApp } from './http/app.ts';
import { createHub } from './hub/hub.ts';
import { createPublisher, type CommitListener } from './publisher.ts';
import { createBridge } from './push/bridge.ts';
import { createDeliverer } from './push/deliver.ts';
import type { Resolver } from './push/targets.ts';
import { VERSION } from './version.ts';
import type { Services } from './services.ts';
import { startCheckpointer } from './store/checkpointer.ts';
import { databaseFile, openDatabase } from './store/db.ts';
import { createLog } from './store/events.ts';
import { createRetention } from './store/retention.ts';
import { createWriter } from './store/writer.ts';

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

/** How long stop() lets answered connections finish before cutting them. */
const DRAIN_MS = 5_000;

export function createPollgate(config: Config, options: PollgateOptions = {}): Pollgate {
  const clock = options.clock ?? systemClock;
  const logger =
    options.logger ??
    pino({
      level: config.logLevel,
      base: { service: 'pollgate' },
      // Belt and braces: nothing logs these, and if something ever does they are masked.
      redact: { paths: ['key', 'secret', 'adminKey', '*.key', '*.secret', '*.authorization', 'headers.authorization'], censor: '[redacted]' },
    },
    // Synchronous writes: nothing is buffered at exit, so a closed stdout (log shipper gone)
    // drops log lines instead of spinning the exit-time flush on EPIPE forever.
    pino.destination({ dest: 1, sync: true }));
  // Start and stop lines are shown at any level but silent: an operator who asked for warnings
  // only still needs to see where the server listens and that it stopped.
  const lifecycleLog = logger.level === 'silent' ? logger : logger.child({}, { level: 'info' });
  const db = openDatabase(config.dataDir);
  const admin = loadAdminKey(config.dataDir, config.adminKey);
  if (admin.generated) options.onAdminKeyGenerated?.(admin.generated, `${config.dataDir}/admin.key`);

  const log = createLog(db);
  const metrics = createMetrics();
  const checkpointer = startCheckpointer(databaseFile(config.dataDir), {
    onError: (message) => logger.warn({ error: message }, 'checkpoint failed; the WAL grows until one succeeds'),
    onGone(reason) {
      // Without the thread nothing would checkpoint and the WAL would grow without bound.
      if (!db.open) return;
      db.pragma('wal_autocheckpoint = 1000');
      logger.error({ reason }, 'checkpoint thread gone: SQLite checkpoints inside commits again');
    },
  });
  const writer = createWriter(db, {
    onCommit(jobs, seconds) {
      metrics.commitGroupSize.observe(jobs);
      metrics.commitDuration.observe(seconds);
    },
  });
  const hub = createHub({ clock, head: log.head, onWake: (seconds) => metrics.wakeLatency.observe(seconds) });
  const listeners: CommitListener[] = [hub.publish];
  const publish = createPublisher({ log, writer, clock, listeners });
  const matchers = createMatchers();
  const deliverer = createDeliverer({
    allowPrivateTargets: config.allowPrivateTargets,
    userAgent: `pollgate/${VERSION}`,
    ...(options.resolve ? { resolve: options.resolve } : {}),
  });
  const bridge = createBridge({
    db,
    log,
    writer,
    clock,
    logger,
    publish,
    matchers,
    deliverer,
    concurrency: config.pushConcurrency,
    retryScheduleMs: config.retryScheduleMs,
    retryMaxAgeMs: config.retryMaxAgeMs,
    onAttempt: (o) => metrics.deliveries.inc({ outcome: o.ok ? 'ok' : (o.error ?? 'error') }),
  });
  listeners.push(bridge.notify);
  const services: Services = {
    config,
    clock,
    logger,
    db,
    log,
    writer,
    hub,
    publish,
    matchers,
    bridge,
    adminKeyHash: admin.hash,
    resolve: options.resolve,
    metrics,
  };
  metrics.bind(services);
  const retention = createRetention({
    log,
    writer,
    clock,
    retentionMs: config.retentionMs,
    onError: (err) => logger.error({ err }, 'retention failed'),
  });

  let closing = false;
  let server: Server | null = null;
  const app = createApp(services, { isClosing: () => closing });

  return {
    app,
    services,

    start() {
      return new Promise((resolve, reject) => {
        const s = serve({ fetch: app.fetch, hostname: config.host, port: config.port }, (info) => {
          retention.start();
          bridge.start();
          lifecycleLog.info({ host: config.host, port: info.port, dataDir: config.dataDir, head: log.head() }, 'pollgate listening');
          resolve(info);
        }) as Server;
        s.once('error', reject);
        server = s;
      });
    },

    async stop() {
      if (closing) return;
      closing = true;
      retention.stop();
      const closed = server
        ? new Promise<void>((resolve) => server!.close(() => resolve()))
        : Promise.resolve();
      hub.shutdown();
      await bridge.stop();
      await writer.close();
      await deliverer.close();
      if (server) {
        const s = server;
        s.closeIdleConnections();
        // Answered polls leave their connections idle a moment later; close those too.
        const sweep = setInterval(() => s.closeIdleConnections(), 50);
        const cut = setTimeout(() => s.closeAllConnections(), DRAIN_MS);
        await closed;
        clearInterval(sweep);
        clearTimeout(cut);
      }
      await checkpointer.stop();
      db.close();
      lifecycleLog.info('pollgate stopped');
    },
  };
}

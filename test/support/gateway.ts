/**
 * Test gateways: a real pollgate on a loopback port over a real SQLite file in a fresh temp
 * directory, and small HTTP helpers built on fetch. Every gateway is stopped and its
 * directory removed by the returned close(); gatewayFor(t) calls it when the test t ends.
 * consumerOf / webhookOf read the admin views (insisting on 200); waitForCursor waits (real
 * time, bounded) for a consumer's committed cursor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import pino, { type Logger } from 'pino';
import type { Clock } from '../../src/clock.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createPollgate, type Pollgate } from '../../src/pollgate.ts';
import type { Resolver } from '../../src/push/targets.ts';
import { waitUntil } from './wait.ts';
import { databaseUrlFor } from './engine.ts';

export const ADMIN_KEY = 'pga_test_admin_key_0123456789abcdef';

export interface TestGateway {
  gateway: Pollgate;
  url: string;
  dataDir: string;
  config: Config;
  /** fetch against the gateway with the given key (admin by default). */
  call(path: string, init?: CallInit): Promise<Response>;
  /** call + parse JSON; returns status and body. */
  json<T = any>(path: string, init?: CallInit): Promise<{ status: number; body: T; headers: Headers }>;
  publish(events: unknown): Promise<any>;
  createConsumer(input: Record<string, unknown>): Promise<{ id: string; key: string; cursor: string } & Record<string, any>>;
  close(): Promise<void>;
}

export interface CallInit {
  method?: string;
  key?: string | null;
  body?: unknown;
  /** Send body as-is (string/Buffer) instead of JSON-encoding it. */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export function tempDir(prefix = 'pollgate-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startGateway(
  opts: { config?: Partial<Config>; clock?: Clock; dataDir?: string; resolve?: Resolver; logger?: Logger } = {},
): Promise<TestGateway> {
  const dataDir = opts.dataDir ?? tempDir();
  const config: Config = {
    ...loadConfig({}),
    dataDir,
    port: 0,
    adminKey: ADMIN_KEY,
    logLevel: 'silent',
    ...opts.config,
    databaseUrl: opts.config && 'databaseUrl' in opts.config ? opts.config.databaseUrl : databaseUrlFor(dataDir),
  };
  const gateway = await createPollgate(config, {
    logger: opts.logger ?? pino({ level: 'silent' }),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.resolve ? { resolve: opts.resolve } : {}),
  });
  const address = await gateway.start();
  const url = `http://127.0.0.1:${address.port}`;

  async function call(path: string, init: CallInit = {}): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    const key = init.key === undefined ? ADMIN_KEY : init.key;
    if (key !== null) headers.authorization = `Bearer ${key}`;
    let body: string | Buffer | undefined = init.raw;
    if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers['content-type'] ??= 'application/json';
    }
    return fetch(url + path, {
      method: init.method ?? (body === undefined ? 'GET' : 'POST'),
      headers,
      ...(body !== undefined ? { body } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    });
  }

  async function json<T>(path: string, init?: CallInit) {
    const res = await call(path, init);
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T, headers: res.headers };
  }

  return {
    gateway,
    url,
    dataDir,
    config,
    call,
    json,
    async publish(events) {
      const r = await json('/v1/events', { body: events });
      if (r.status !== 201 && r.status !== 200) throw new Error(`publish failed: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async createConsumer(input) {
      const r = await json<any>('/v1/consumers', { body: input });
      if (r.status !== 201) throw new Error(`create consumer failed: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    async close() {
      await gateway.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A gateway for one test, closed when the test ends. Private (loopback) webhook targets are
 * allowed unless opts.config says otherwise, so it can push to test receivers.
 */
export async function gatewayFor(t: TestContext, opts: Parameters<typeof startGateway>[0] = {}): Promise<TestGateway> {
  const g = await startGateway({ ...opts, config: { allowPrivateTargets: true, ...opts.config } });
  t.after(() => g.close());
  return g;
}

/** GET /v1/consumers/:id with the admin key; insists on 200 and answers the body. */
export async function consumerOf(g: TestGateway, id: string): Promise<any> {
  const r = await g.json(`/v1/consumers/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** GET /v1/consumers/:id/webhook with the admin key; insists on 200 and answers the body. */
export async function webhookOf(g: TestGateway, id: string): Promise<any> {
  const r = await g.json(`/v1/consumers/${id}/webhook`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** A push consumer's attempt log (newest first), insisting on 200. */
export async function deliveriesOf(g: TestGateway, id: string, limit = 1000): Promise<any[]> {
  const r = await g.json(`/v1/consumers/${id}/deliveries?limit=${limit}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.deliveries;
}

/** Waits until the attempt log holds at least n attempts; answers it (newest first). */
export async function waitForDeliveries(g: TestGateway, id: string, n: number, timeoutMs = 5_000): Promise<any[]> {
  let list: any[] = [];
  await waitUntil(
    async () => (list = await deliveriesOf(g, id)).length >= n,
    timeoutMs,
    () => `${n} attempts for ${id}, have ${list.length}: ${JSON.stringify(list.slice(0, 2))}`,
  );
  return list;
}

/** Waits until the consumer's committed cursor is this one. */
export async function waitForCursor(g: TestGateway, id: string, cursor: string, timeoutMs = 5_000): Promise<void> {
  let seen = '';
  await waitUntil(
    async () => (seen = (await consumerOf(g, id)).cursor) === cursor,
    timeoutMs,
    () => `cursor ${cursor} for ${id}, at ${seen}`,
  );
}

/**
 * Steps a fake clock from attempt to attempt of a failing webhook until the bridge gives up
 * (at most maxSteps attempts); answers the webhook as it then is.
 */
export async function stepUntilGivenUp(
  g: TestGateway,
  clock: { now(): number; advance(ms: number): Promise<unknown> | unknown },
  id: string,
  maxSteps: number,
): Promise<any> {
  let hook = await webhookOf(g, id);
  for (let step = 0; hook.enabled && step < maxSteps; step++) {
    const count = (await deliveriesOf(g, id)).length;
    assert.ok(hook.health.next_attempt_at, `step ${step}: a next attempt is scheduled`);
    await clock.advance(Math.max(0, Date.parse(hook.health.next_attempt_at) - clock.now()));
    await waitForDeliveries(g, id, count + 1);
    await waitUntil(
      async () => {
        hook = await webhookOf(g, id);
        return !hook.enabled || hook.health.consecutive_failures === count + 1;
      },
      5_000,
      () => `the state after attempt ${count + 1}`,
    );
  }
  return hook;
}

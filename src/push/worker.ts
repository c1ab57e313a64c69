/**
 * One consumer's delivery loop. The bridge is an ordinary reader of the log:
 *
 * 1. Read the next matching events after the cursor (the filter applies as on the poll path;
 *    the cursor moves past events it skips).
 * 2. Deliver them one at a time, in log order. On a 2xx the cursor moves to the event. The
 *    record (cursor, webhook state, attempt log rows) is written behind delivery: at most one
 *    write per worker is in flight or waiting, at most one every 25 ms, and whatever happens
 *    meanwhile joins the next one, so a fast receiver costs a few commits a second, not one
 *    per event (a crash at worst delivers the last few again: at-least-once).
 * 3. On a failure the attempt count, first failure time and next attempt time are written,
 *    and the loop sleeps until then; a restart reads them back and resumes on schedule.
 * 4. Failing for longer than the maximum age on one event disables the webhook, returns the
 *    consumer to pull mode at its cursor and appends `pollgate.webhook.disabled` to the log,
 *    all in one transaction. Nothing is dropped.
 * 5. Before each attempt the loop checks the global bridge toggle: once a pause is answered,
 *    no attempt starts.
 * 6. Read-ahead is bounded by bytes, per worker and over all workers (read-ahead.ts): a worker
 *    that gets no room reads one event at a time, and never waits for room.
 * 7. The worker delivers under a lease (store.claimLeases): every record carries the lease's
 *    epoch and is refused once the lease moved on (then the worker stops), and no attempt
 *    starts once the lease may have run out by this process's own monotonic clock.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { Matcher } from '../filter/filter.ts';
import { recordMatches } from '../filter/record.ts';
import type { Publish } from '../publisher.ts';
import { encodeCursor } from '../store/cursor.ts';
import { dataBytes, LeaseLost, type EventRecord, type Page, type Store, type WebhookRow } from '../store/store.ts';
import type { AlertSender } from './alert-sender.ts';
import { afterDisabled, afterFailure, afterSuccess, parseAlertState, type AlertKind, type AlertPolicy } from './alerts.ts';
import type { AttemptOutcome, Deliverer } from './deliver.ts';
import { READ_AHEAD_BYTES, type ReadAheadBudget } from './read-ahead.ts';
import { retryDelay } from './retry.ts';
import type { Semaphore } from './semaphore.ts';
import { parseOptions, renderRequest, scrubbedResponse, shapeOf, type Shape, type WebhookOptions } from './shape.ts';

/** At most one "webhook attempt failed" line a minute per webhook. */
const FAILURE_LOG_INTERVAL_MS = 60_000;

export interface WorkerDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  publish: Publish;
  deliverer: Deliverer;
  slots: Semaphore;
  /** The node's read-ahead budget, shared by its workers. */
  readAhead: ReadAheadBudget;
  /** The global retry schedule and give-up age (a webhook may have its own). */
  retryScheduleMs: readonly number[];
  retryMaxAgeMs: number;
  /** The global alert thresholds (a webhook may have its own). */
  alertPolicy: AlertPolicy;
  /** Sends alerts to the operator's URL, when one is configured. */
  alerts?: AlertSender | undefined;
  /** The global toggle, as of now (on PostgreSQL read from the database before each attempt). */
  bridgeEnabled: () => boolean | Promise<boolean>;
  /** Counts outcomes for metrics and benches. */
  onAttempt?: (outcome: AttemptOutcome) => void;
  /** The worker stopped by itself: it gave up and disabled its webhook, or lost its lease. */
  onDisabled: (worker: Worker) => void;
}

export interface WorkerInput {
  consumerId: string;
  /** The lease epoch that fences this worker's writes. */
  epoch: number;
  /** performance.now() until which the lease is surely held (renew() extends it). */
  leaseValidUntil: number;
  tenant: string;
  /** The consumer's name, for templates ({{consumer.name}}). */
  consumerName: string | null;
  cursor: number;
  matcher: Matcher;
  webhook: WebhookRow;
}

/**
 * Least time between two record writes of one worker. Bounds the commits (each an fsync on
 * the event loop) a fast receiver causes; a crash redelivers at most this much.
 */
const RECORD_INTERVAL_MS = 25;
/** After a failed record write (the database away), the next try waits about this long. */
const RECORD_RETRY_MS = 500;
/** After the store failed in the loop (a read, the toggle, the give-up), the next turn waits this long. */
const STORE_RETRY_MS = 500;

/** Events read ahead per query (and READ_AHEAD_BYTES of them at most); the scan per query is bounded too. */
const READ_AHEAD = 100;
const SCAN_LIMIT = 1000;
/**
 * What one read brings at least when the worker has little room: passed-over events are
 * dropped at once, so a filtered worker without room still scans in steps of this, not one
 * event per query.
 */
const SCAN_BYTES = 64 * 1024;

export class Worker {
  readonly consumerId: string;
  readonly tenant: string;
  readonly epoch: number;
  private leaseValidUntil: number;
  private cursor: number;
  private readonly matcher: Matcher;
  private hook: WebhookRow;
  private buffer: EventRecord[] = [];
  /** Bytes of the buffer, held in the node's read-ahead budget. */
  private bufferBytes = 0;
  private stopped = false;
  /** stop() was called (as opposed to the loop ending itself after a give-up). */
  private stopRequested = false;
  private wakeUp: (() => void) | null = null;
  /** A wake() came while the loop was not asleep. */
  private wokenAwake = false;
  private readonly abort = new AbortController();
  private readonly done: Promise<void>;
  /** Record not yet handed to the writer, and the write in flight (see 2. above). */
  private unrecorded: Unrecorded | null = null;
  private recording: Promise<void> | null = null;
  private lastRecordAt = -Infinity;
  /** Ends the wait before the next record write (stop, give-up). */
  private hurry: () => void = () => {};
  /** When a failed attempt was last logged, and how many failed since without a line. */
  private failureLoggedAt: number | null = null;
  private failuresNotLogged = 0;
  /** Compiled once per webhook row, not per delivery (null: the stored shape does not compile). */
  private shape: Shape | null;
  private shapeProblem: string | null = null;
  private readonly options: WebhookOptions;
  private readonly consumerName: string | null;
  /** Clock time the last attempt started (the rate limit's reference). */
  private lastAttemptAt = -Infinity;

  constructor(
    private readonly deps: WorkerDeps,
    input: WorkerInput,
  ) {
    this.consumerId = input.consumerId;
    this.tenant = input.tenant;
    this.epoch = input.epoch;
    this.leaseValidUntil = input.leaseValidUntil;
    this.cursor = input.cursor;
    this.matcher = input.matcher;
    this.hook = input.webhook;
    this.consumerName = input.consumerName;
    this.options = parseOptions(input.webhook);
    // A worker started again (a PATCH, a restart, another node) keeps the rate limit's spacing
    // from the last delivery; a failed attempt is spaced by its retry delay already.
    this.lastAttemptAt = input.webhook.last_success_at ?? -Infinity;
    try {
      this.shape = shapeOf(input.webhook);
    } catch (error) {
      // Stored before its checks existed: every attempt fails, saying why, until a PATCH fixes it.
      this.shape = null;
      this.shapeProblem = `the webhook's templates do not compile: ${(error as Error).message}`;
    }
    this.done = this.run()
      .catch((err) => {
        deps.logger.error({ err, consumer: this.consumerId }, 'push worker failed');
      })
      .finally(() => {
        deps.readAhead.release(this.bufferBytes); // nothing more is delivered from it
        this.bufferBytes = 0;
        return this.recorded();
      });
  }

  /** The lease was renewed: it is held until validUntil (performance.now() time). */
  renew(validUntil: number): void {
    this.leaseValidUntil = Math.max(this.leaseValidUntil, validUntil);
    this.wake();
  }

  /** New events, a resume, or a config change: look again now. */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    // Not asleep (reading the log, asking for the toggle): the next sleep returns at once, so a
    // wake-up that arrives during an await is never lost.
    if (w) w();
    else this.wokenAwake = true;
  }

  /**
   * Ends the loop. Without abort, an attempt in flight finishes and is recorded (so the
   * cursor is exactly where the bridge got); with abort it is cut and not recorded.
   */
  async stop(opts: { abort?: boolean } = {}): Promise<void> {
    this.stopRequested = true;
    this.stopped = true;
    this.hurry();
    if (opts.abort) this.abort.abort();
    this.wake();
    await this.done;
  }

  private sleep(ms: number | null, clock: 'deps' | 'real' = 'deps'): Promise<void> {
    if (this.stopped || this.wokenAwake) {
      this.wokenAwake = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let cancel = () => {};
      this.wakeUp = () => {
        cancel();
        resolve();
      };
      if (ms !== null && clock === 'real') {
        const timer = setTimeout(() => this.wake(), ms);
        cancel = () => clearTimeout(timer);
      } else if (ms !== null) {
        cancel = this.deps.clock.setTimer(() => this.wake(), Math.max(0, ms));
      }
    });
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if ((await this.step()) === 'aborted') return;
      } catch (err) {
        // The store failed (the database away): nothing moved; go on after a pause, in real
        // time (a test clock may stand still), woken early by a stop.
        this.deps.logger.warn({ err, consumer: this.consumerId }, 'push worker: the store failed; trying again shortly');
        await this.sleep(STORE_RETRY_MS, 'real');
      }
    }
  }

  /** One turn of the loop: wait for what it waits on, or deliver the next event. */
  private async step(): Promise<'aborted' | void> {
    const { deps } = this;
    if (performance.now() >= this.leaseValidUntil) {
      // The lease may have run out: wait for the bridge to renew it (or stop this worker).
      return this.sleep(null);
    }
    if (!(await deps.bridgeEnabled())) return this.sleep(null);
    const due = this.hook.next_attempt_at;
    const now = deps.clock.now();
    if (due !== null && due > now) return this.sleep(due - now);
    // The webhook's rate limit: attempts start at least 1/rate apart.
    const rate = this.options.rate_limit;
    if (rate !== undefined && now < this.lastAttemptAt + 1000 / rate) return this.sleep(this.lastAttemptAt + 1000 / rate - now);
    const event = await this.next();
    if (!event) return this.sleep(null);
    await deps.slots.acquire();
    try {
      // Checked again right before starting: a pause answered meanwhile must hold.
      if (this.stopped || performance.now() >= this.leaseValidUntil || !(await deps.bridgeEnabled())) return;
      const attemptAt = deps.clock.now();
      this.lastAttemptAt = attemptAt;
      const outcome = await this.attempt(event, attemptAt);
      if (this.abort.signal.aborted) return 'aborted'; // shutdown: the attempt does not count
      deps.onAttempt?.(outcome);
      if (outcome.ok) await this.succeeded(event, outcome, attemptAt);
      else await this.failed(event, outcome, attemptAt);
    } finally {
      deps.slots.release();
    }
  }

  /** Renders the event's request and sends it; a render problem is a failed attempt that sent nothing. */
  private async attempt(event: EventRecord, at: number): Promise<AttemptOutcome> {
    const unsent = (detail: string): AttemptOutcome => ({
      ok: false, status: null, error: 'render', detail, durationMs: 0, retryAfterMs: null, response: null,
    });
    if (!this.shape) return unsent(this.shapeProblem ?? 'the webhook does not compile');
    let request;
    try {
      request = renderRequest(this.shape, event, { id: this.consumerId, name: this.consumerName }, Math.floor(Date.now() / 1000)); // wall time: receivers check it
    } catch (error) {
      // Rendering touches no store: whatever it throws is this event's render problem (rethrown,
      // the loop would take it for the database and try the same event every 500 ms, for ever).
      return unsent((error as Error).message.slice(0, 300));
    }
    const outcome = await this.deps.deliverer.deliver({ ...request, timeoutMs: this.hook.timeout_ms }, this.abort.signal);
    return { ...outcome, response: scrubbedResponse(outcome.response, this.shape) };
  }

  /** This webhook's alert thresholds over the global ones. */
  private alertPolicy(): AlertPolicy {
    const own = this.options.alerts;
    const global = this.deps.alertPolicy;
    return {
      enabled: own?.enabled ?? global.enabled,
      failures: own?.failures ?? global.failures,
      windowMs: own?.window_ms ?? global.windowMs,
      debounceMs: global.debounceMs,
    };
  }

  /**
   * Writes a state change together with its alert event (one transaction, fenced by the lease),
   * then sends the event to the operator's URL. False when it could not be written (the
   * caller then records without the alert, which the next change tries again).
   */
  private async tellAlert(kind: AlertKind | 'disabled', data: Record<string, unknown>, progress: { cursor?: number; state: object; deliveries: DeliveryInput[]; at: number }): Promise<boolean> {
    await this.recorded(); // what was recorded before goes first
    try {
      const [appended] = await this.deps.publish(
        [{ tenant: this.tenant, type: `pollgate.webhook.${kind}`, id: undefined, data: JSON.stringify({ consumer_id: this.consumerId, url: this.hook.url, ...data }) }],
        { progress: { consumerId: this.consumerId, epoch: this.epoch, ...progress } },
      );
      if (appended) this.deps.alerts?.send(appended.record);
      this.deps.logger.info({ consumer: this.consumerId, alert: kind }, `webhook alert: ${kind}`);
      return true;
    } catch (error) {
      if (error instanceof LeaseLost) {
        this.stopped = true;
        this.deps.onDisabled(this);
        return true;
      }
      this.deps.logger.warn({ err: error, consumer: this.consumerId, alert: kind }, 'could not write a webhook alert; the next attempt tries again');
      return false;
    }
  }

  /** The next matching event after the cursor, moving the cursor past skipped ones. */
  private async next(): Promise<EventRecord | undefined> {
    if (this.buffer.length > 0) return this.buffer[0];
    const { store, readAhead } = this.deps;
    let pos = this.cursor;
    let scanned = 0;
    while (scanned < SCAN_LIMIT) {
      const room = readAhead.take(READ_AHEAD_BYTES);
      let page: Page;
      try {
        page = await store.read(this.tenant, pos, READ_AHEAD, Math.max(room, SCAN_BYTES));
      } catch (error) {
        readAhead.settle(room, 0);
        throw error;
      }
      let kept = 0;
      for (const r of page.records) {
        if (!recordMatches(this.matcher, r)) {
          if (this.buffer.length === 0) pos = r.pos;
          continue;
        }
        const size = dataBytes(r);
        // Past the room: read again once delivered. The first match is kept whatever its size.
        if (this.buffer.length > 0 && kept + size > room) break;
        this.buffer.push(r);
        kept += size;
      }
      readAhead.settle(room, kept);
      this.bufferBytes += kept;
      scanned += page.records.length;
      if (this.buffer.length > 0 || (page.records.length < READ_AHEAD && !page.cut)) break;
    }
    if (pos > this.cursor) {
      // Skipped events: the cursor moves past them, as a poll's would.
      this.cursor = pos;
      this.record({ cursor: pos });
    }
    if (this.buffer.length === 0 && scanned >= SCAN_LIMIT) {
      // A long run of skipped events: let others run, then continue scanning.
      setImmediate(() => this.wake());
    }
    return this.buffer[0];
  }

  private async succeeded(event: EventRecord, outcome: AttemptOutcome, at: number): Promise<void> {
    const failedBefore = this.hook.consecutive_failures;
    if (this.hook.consecutive_failures > 0) {
      this.deps.logger.info({ consumer: this.consumerId, event: event.id, failedAttempts: this.hook.consecutive_failures }, 'webhook delivering again');
    }
    this.failureLoggedAt = null;
    this.failuresNotLogged = 0;
    this.buffer.shift();
    const size = dataBytes(event);
    this.bufferBytes -= size;
    this.deps.readAhead.release(size);
    this.cursor = event.pos;
    const attempt = this.hook.attempt + 1;
    const before = this.hook;
    // Most deliveries follow a success: no episode is open, the stored state stays as it is.
    const open = before.consecutive_failures > 0 || before.alert_state !== '{}';
    const alerts = open ? afterSuccess(parseAlertState(before.alert_state)) : { state: null, alert: null };
    this.hook = {
      ...this.hook,
      attempt: 0,
      first_failure_at: null,
      next_attempt_at: null,
      last_success_at: at,
      last_status: outcome.status,
      consecutive_failures: 0,
      alert_state: alerts.state ? JSON.stringify(alerts.state) : before.alert_state,
    };
    const delivery = deliveryRow(this.consumerId, event, attempt, outcome, at, null);
    if (alerts.alert) {
      const told = await this.tellAlert(
        'recovered',
        { event_id: event.id, cursor: encodeCursor(event.pos), failed_attempts: failedBefore, last_error: before.last_error },
        { cursor: event.pos, state: pickState(this.hook), deliveries: [delivery], at },
      );
      if (told) return;
      this.hook = { ...this.hook, alert_state: before.alert_state };
    }
    this.record({ cursor: event.pos, state: pickState(this.hook), delivery });
  }

  /**
   * A failed attempt at warn, at most one line a minute per webhook (a receiver that is down for
   * a day must not fill the log); the line says how many failed since the last one. Never the
   * URL or headers: they may carry credentials.
   */
  private logFailure(event: EventRecord, attempt: number, outcome: AttemptOutcome, next: number | null, at: number): void {
    if (this.failureLoggedAt !== null && at - this.failureLoggedAt < FAILURE_LOG_INTERVAL_MS) {
      this.failuresNotLogged++;
      return;
    }
    this.deps.logger.warn(
      {
        consumer: this.consumerId,
        event: event.id,
        attempt,
        error: outcome.error,
        status: outcome.status,
        detail: outcome.detail,
        nextAttemptAt: next === null ? null : new Date(next).toISOString(),
        ...(this.failuresNotLogged > 0 ? { failedSinceLastLine: this.failuresNotLogged } : {}),
      },
      'webhook attempt failed',
    );
    this.failureLoggedAt = at;
    this.failuresNotLogged = 0;
  }

  private async failed(event: EventRecord, outcome: AttemptOutcome, at: number): Promise<void> {
    const { deps } = this;
    const attempt = this.hook.attempt + 1;
    const firstFailure = this.hook.first_failure_at ?? at;
    const deadline = firstFailure + (this.options.retry_max_age_ms ?? deps.retryMaxAgeMs);
    const giveUp = at >= deadline;
    const schedule = this.options.retry_schedule_ms ?? deps.retryScheduleMs;
    const next = giveUp ? null : Math.min(at + retryDelay(schedule, attempt, outcome.retryAfterMs), deadline);
    const alertsBefore = this.hook.alert_state;
    const alerts = afterFailure(parseAlertState(alertsBefore), this.alertPolicy(), at);
    this.hook = {
      ...this.hook,
      attempt,
      first_failure_at: firstFailure,
      next_attempt_at: next,
      last_error: `${outcome.error}${outcome.detail ? `: ${outcome.detail}` : ''}`,
      last_status: outcome.status,
      consecutive_failures: this.hook.consecutive_failures + 1,
      alert_state: JSON.stringify(giveUp ? afterDisabled(alerts.state) : alerts.state),
    };
    const state = this.hook;
    this.logFailure(event, attempt, outcome, next, at);
    const row = deliveryRow(this.consumerId, event, attempt, outcome, at, next);
    if (!giveUp && alerts.alert) {
      const policy = this.alertPolicy();
      const told = await this.tellAlert(
        'failing',
        {
          event_id: event.id,
          cursor: encodeCursor(this.cursor),
          failures: policy.failures,
          window_ms: policy.windowMs,
          since: new Date(alerts.state.failures![0]!).toISOString(),
          last_error: state.last_error,
          last_status: state.last_status,
          next_attempt_at: next === null ? null : new Date(next).toISOString(),
        },
        { state: pickState(state), deliveries: [row], at },
      );
      if (told) return;
      this.hook = { ...this.hook, alert_state: alertsBefore };
    }
    if (!giveUp) {
      // Retry state goes to disk now, not at the next interval: a restart resumes on schedule.
      this.record({ state: pickState(state), delivery: row });
      this.hurry();
      return;
    }
    // What was recorded before goes in first, so it cannot land after (and undo) the give-up.
    await this.recorded();
    // Give up: disable and tell the tenant's log, atomically; the consumer is back in pull mode.
    const reason = `failed for ${Math.round((at - firstFailure) / 1000)} s on event ${event.id} (${attempt} attempts); last error: ${state.last_error}`;
    this.stopped = true;
    const progress = {
      consumerId: this.consumerId,
      epoch: this.epoch,
      state: { ...pickState(state), enabled: 0, next_attempt_at: null, disabled_reason: reason },
      deliveries: [row],
      at,
    };
    let disabled;
    try {
      [disabled] = await deps.publish(
      [
        {
          tenant: this.tenant,
          type: 'pollgate.webhook.disabled',
          id: undefined,
          data: JSON.stringify({
            consumer_id: this.consumerId,
            url: this.hook.url,
            reason,
            event_id: event.id,
            cursor: encodeCursor(this.cursor),
            attempts: attempt,
            first_failure_at: new Date(firstFailure).toISOString(),
            last_error: state.last_error,
            last_status: state.last_status,
          }),
        },
      ],
      { progress },
    );
    } catch (error) {
      if (!(error instanceof LeaseLost)) {
        // Not given up after all (the database away): the loop tries again, unless stopping.
        this.stopped = this.stopRequested;
        throw error;
      }
      // Another node delivers this consumer now; it decides for itself.
      deps.onDisabled(this);
      return;
    }
    if (disabled) deps.alerts?.send(disabled.record);
    deps.logger.warn({ consumer: this.consumerId, event: event.id, attempts: attempt }, 'webhook disabled after retrying too long');
    deps.onDisabled(this);
  }

  /** Adds to the record written behind delivery; starts a write unless one is in flight. */
  private record(change: { cursor?: number; state?: WebhookState; delivery?: DeliveryInput }): void {
    const u = (this.unrecorded ??= { cursor: null, state: null, deliveries: [] });
    if (change.cursor !== undefined) u.cursor = change.cursor;
    if (change.state) u.state = change.state;
    if (change.delivery) u.deliveries.push(change.delivery);
    if (!this.recording) this.recording = this.writeRecord();
  }

  private async writeRecord(): Promise<void> {
    while (this.unrecorded) {
      // A commit blocks the event loop for an fsync: at most one per worker per interval.
      // Waits end on shared interval boundaries, so all workers' records join one commit.
      const due = Math.ceil((this.lastRecordAt + RECORD_INTERVAL_MS) / RECORD_INTERVAL_MS) * RECORD_INTERVAL_MS;
      const wait = due - performance.now();
      if (wait > 0 && !this.stopped) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => this.hurry(), wait);
          this.hurry = () => {
            clearTimeout(timer);
            this.hurry = () => {};
            resolve();
          };
        });
      }
      this.lastRecordAt = performance.now();
      const u = this.unrecorded;
      this.unrecorded = null;
      try {
        const held = await this.deps.store.recordProgress({
          consumerId: this.consumerId,
          epoch: this.epoch,
          cursor: u.cursor ?? undefined,
          state: u.state ?? undefined,
          deliveries: u.deliveries,
          at: this.deps.clock.now(),
        });
        if (!held) {
          // Fenced: the lease moved on (another node, or a change revoked it). Stop pushing.
          this.stopped = true;
          this.wake();
          this.deps.onDisabled(this);
        }
      } catch (err) {
        this.deps.logger.error({ err, consumer: this.consumerId }, 'could not record a delivery; retrying');
        // Stopping: what was not recorded is delivered again by whoever goes on (at-least-once).
        if (this.stopped) break;
        // Kept for the next write, which waits a little (the database may be away): without it,
        // the last deliveries before a quiet spell would never move the committed cursor.
        this.keepUnrecorded(u);
        this.lastRecordAt = performance.now() + RECORD_RETRY_MS;
      }
    }
    this.recording = null;
  }

  /** Merges a record whose write failed under whatever was recorded since (newer values win). */
  private keepUnrecorded(u: Unrecorded): void {
    const now = this.unrecorded;
    if (!now) {
      this.unrecorded = u;
      return;
    }
    now.cursor = Math.max(now.cursor ?? 0, u.cursor ?? 0) || null;
    now.state ??= u.state;
    now.deliveries = [...u.deliveries, ...now.deliveries];
  }

  /** Resolves once everything recorded so far is committed (without waiting out the interval). */
  private async recorded(): Promise<void> {
    this.hurry();
    while (this.recording) await this.recording;
  }
}

interface Unrecorded {
  cursor: number | null;
  state: WebhookState | null;
  deliveries: DeliveryInput[];
}

type WebhookState = ReturnType<typeof pickState>;
type DeliveryInput = ReturnType<typeof deliveryRow>;

function pickState(h: WebhookRow) {
  return {
    attempt: h.attempt,
    first_failure_at: h.first_failure_at,
    next_attempt_at: h.next_attempt_at,
    last_success_at: h.last_success_at,
    last_error: h.last_error,
    last_status: h.last_status,
    consecutive_failures: h.consecutive_failures,
    alert_state: h.alert_state,
  };
}

function deliveryRow(
  consumerId: string,
  event: EventRecord,
  attempt: number,
  outcome: AttemptOutcome,
  at: number,
  next: number | null,
) {
  return {
    consumer_id: consumerId,
    event_id: event.id,
    pos: event.pos,
    attempt,
    status: outcome.status,
    error: outcome.error,
    duration_ms: outcome.durationMs,
    at,
    next_attempt_at: next,
    response: outcome.response?.body ?? null,
  };
}

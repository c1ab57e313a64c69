/**
 * The consumer's own calls (consumer key): GET /v1/events (long-poll), POST /v1/ack,
 * GET /v1/consumer.
 */
import type { ServerResponse } from 'node:http';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { consumerView, supersededBecause } from '../consumers/consumers.ts';
import { ack, poll, pollResultJson, startPoll, type HeldEnd, type PollAnswer, type PollRequest } from '../consumers/poll.ts';
import { cursorPosition } from '../consumers/positions.ts';
import { ApiError } from '../errors.ts';
import { encodeCursor } from '../store/cursor.ts';
import type { ConsumerRow } from '../store/store.ts';

/** What a failed poll needs of its consumer to say why it was superseded. */
type PolledConsumer = Pick<ConsumerRow, 'id' | 'key_id'>;
import { envelopeJson } from '../store/envelope.ts';
import type { Services } from '../services.ts';
import { requireConsumer, type Env } from './auth.ts';
import { readJsonBody } from './body.ts';
import { answerLater, nodeResponse, onClientGone, whenSent, writeJsonNow } from './incoming.ts';
import { jsonHeaders } from './publish.ts';
import { parseInput } from './validate.ts';

const DEFAULT_WAIT_S = 25;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

export const ackSchema = z.strictObject({
  cursor: z.string({ error: 'must be a cursor string' }).meta({ description: 'Commit this position.' }),
});

/** Query of GET /v1/events; validates requests and documents them in /openapi.json. */
export function pollQuerySchema(maxWaitS: number) {
  const waitProblem = `must be a number of seconds from 0 to ${maxWaitS}`;
  const limitProblem = `must be an integer from 1 to ${MAX_LIMIT}`;
  return z.object({
    wait: z
      .string()
      .regex(/^\d+(\.\d+)?$/, waitProblem)
      .refine((t) => Number(t) <= maxWaitS, waitProblem)
      .optional()
      .meta({ description: `Seconds to hold the request while nothing matches (0 to ${maxWaitS}, decimals allowed). Default ${Math.min(DEFAULT_WAIT_S, maxWaitS)}.`, example: '25' }),
    limit: z
      .string()
      .regex(/^\d+$/, limitProblem)
      .refine((t) => Number(t) >= 1 && Number(t) <= MAX_LIMIT, limitProblem)
      .optional()
      .meta({ description: `Most events returned (1 to ${MAX_LIMIT}). Default ${DEFAULT_LIMIT}.`, example: '100' }),
    after: z.string().optional().meta({ description: 'Read after this cursor instead of the committed one (replay).' }),
    ack: z.string().optional().meta({ description: 'Commit this cursor first, then read.' }),
  });
}

export function consumerRoutes(s: Services): Hono<Env> {
  const app = new Hono<Env>();
  const querySchema = pollQuerySchema(s.config.maxWaitMs / 1000);
  // A server configured to hold polls for less than the default holds them for its maximum.
  const defaultWaitS = Math.min(DEFAULT_WAIT_S, s.config.maxWaitMs / 1000);

  const maxWait = String(s.config.maxWaitMs / 1000);

  app.get('/v1/events', async (c) => {
    tellMaxWait(c, maxWait);
    const consumer = requireConsumer(c);
    const q = parseInput(querySchema, c.req.query());
    const waitS = q.wait === undefined ? defaultWaitS : Number(q.wait);
    const limit = q.limit === undefined ? DEFAULT_LIMIT : Number(q.limit);
    const after = q.after === undefined ? undefined : await cursorPosition(s.store, consumer.tenant, q.after, 'after');
    const ackTo = q.ack === undefined ? undefined : await cursorPosition(s.store, consumer.tenant, q.ack, 'ack');
    const start = await s.store.beginPoll(consumer.id, s.clock.now());

    const request: PollRequest = {
      consumer,
      ticket: s.hub.begin(consumer.id, start.generation),
      waitMs: Math.round(waitS * 1000),
      limit,
      after,
      ack: ackTo,
      onGone: onClientGone(c),
      onSent: whenSent(c),
    };
    const outgoing = nodeResponse(c);
    let result: PollAnswer | 'held';
    try {
      // On Node a held poll is answered from the hub's callback and the route returns at
      // once (answerLater): while it waits, it holds no Hono context or suspended frames.
      result = outgoing ? await startPoll(s, request, answerHeld(s, { id: consumer.id, key_id: consumer.key_id }, outgoing)) : await poll(s, request);
    } catch (caught) {
      throw await pollFailed(s, consumer, caught);
    }
    if (result === 'held') return answerLater(c);
    s.metrics.pollOutcomes.inc({ outcome: result.outcome });
    return c.body(pollResultJson(result, envelopeJson), 200, jsonHeaders());
  });

  app.post('/v1/ack', async (c) => {
    const consumer = requireConsumer(c);
    const body = parseInput(ackSchema, await readJsonBody(c, 'small'));
    const committed = await ack(s, consumer, await cursorPosition(s.store, consumer.tenant, body.cursor, 'cursor'));
    return c.json({ cursor: encodeCursor(committed) });
  });

  app.get('/v1/consumer', async (c) => {
    tellMaxWait(c, maxWait);
    return c.json({ ...(await consumerView(s, requireConsumer(c))), max_wait: s.config.maxWaitMs / 1000 });
  });

  return app;
}

/**
 * Every answer of the consumer routes past authentication, refusals included, says the longest
 * `wait` this server holds (`pollgate-max-wait`, seconds), so clients adapt to a lower
 * POLLGATE_MAX_WAIT instead of failing. Set on the Node response itself, where it survives any
 * answer, even one written straight to the socket.
 */
export const MAX_WAIT_HEADER = 'pollgate-max-wait';

function tellMaxWait(c: Context<Env>, seconds: string): void {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (outgoing && !outgoing.headersSent) outgoing.setHeader(MAX_WAIT_HEADER, seconds);
  else c.header(MAX_WAIT_HEADER, seconds);
}

/** The error a failed poll answers with (superseded says why), counted in the poll outcomes. */
async function pollFailed(s: Services, consumer: PolledConsumer, caught: unknown): Promise<unknown> {
  let error = caught;
  if (caught instanceof ApiError && caught.code === 'superseded') {
    try {
      error = await supersededBecause(s, consumer);
    } catch (failure) {
      error = failure;
    }
  }
  s.metrics.pollOutcomes.inc({ outcome: pollErrorOutcome(error) });
  return error;
}

/**
 * Answers a held poll on the Node response when its wait ends; runs synchronously inside the
 * hub (a commit's wake-up loop for events) and never throws. A function of its own so the
 * callback keeps only what it needs (not the request's context, nor the whole consumer row).
 */
function answerHeld(s: Services, consumer: PolledConsumer, outgoing: ServerResponse): (end: HeldEnd) => void {
  return (end) => {
    if (end.answer) {
      s.metrics.pollOutcomes.inc({ outcome: end.answer.outcome });
      if (end.answer.outcome !== 'aborted') writeJsonNow(outgoing, 200, pollResultJson(end.answer, envelopeJson));
      return;
    }
    void pollFailed(s, consumer, end.error).then((error) => writeErrorNow(s, outgoing, error));
  };
}

/** What app.onError answers, for an error that comes after the route returned. */
function writeErrorNow(s: Services, outgoing: ServerResponse, error: unknown): void {
  if (error instanceof ApiError) {
    writeJsonNow(outgoing, error.status, JSON.stringify(error.toJSON()), error.status === 503 ? { 'retry-after': '1' } : undefined);
    return;
  }
  s.logger.error({ err: error, method: 'GET', path: '/v1/events' }, 'unhandled error');
  writeJsonNow(outgoing, 500, JSON.stringify(new ApiError('internal', 'an internal error occurred; it has been logged').toJSON()));
}

function pollErrorOutcome(error: unknown): string {
  if (!(error instanceof ApiError)) return 'error';
  if (error.code === 'superseded') return 'superseded';
  if (error.code === 'cursor_expired') return 'expired';
  if (error.code === 'push_mode' || error.code === 'not_found' || error.code === 'unauthorized') return 'ended';
  return 'error';
}

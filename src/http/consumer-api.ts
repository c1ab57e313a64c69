/**
 * The consumer's own calls (consumer key): GET /v1/events (long-poll), POST /v1/ack,
 * GET /v1/consumer.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { consumerView } from '../consumers/consumers.ts';
import { ack, poll, pollResultJson } from '../consumers/poll.ts';
import { cursorPosition } from '../consumers/positions.ts';
import { ApiError, invalidField } from '../errors.ts';
import { encodeCursor } from '../store/cursor.ts';
import { envelopeJson } from '../store/events.ts';
import type { Services } from '../services.ts';
import { requireConsumer, type Env } from './auth.ts';
import { readJsonBody } from './body.ts';
import { jsonHeaders } from './publish.ts';
import { parseInput } from './validate.ts';

const DEFAULT_WAIT_S = 25;
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

const ackSchema = z.strictObject({ cursor: z.string({ error: 'must be a cursor string' }) });

export function consumerRoutes(s: Services): Hono<Env> {
  const app = new Hono<Env>();
  const maxWaitS = s.config.maxWaitMs / 1000;

  app.get('/v1/events', async (c) => {
    const consumer = requireConsumer(c);
    const q = c.req.query();
    const waitS = numberParam(q.wait, 'wait', DEFAULT_WAIT_S, 0, maxWaitS, false);
    const limit = numberParam(q.limit, 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT, true);
    const after = q.after === undefined ? undefined : cursorPosition(s.log, q.after, 'after');
    const ackTo = q.ack === undefined ? undefined : cursorPosition(s.log, q.ack, 'ack');

    let result;
    try {
      result = await poll(s, {
        consumer,
        ticket: s.hub.begin(consumer.id),
        waitMs: Math.round(waitS * 1000),
        limit,
        after,
        ack: ackTo,
        signal: c.req.raw.signal,
      });
    } catch (error) {
      s.metrics.pollOutcomes.inc({ outcome: pollErrorOutcome(error) });
      throw error;
    }
    s.metrics.pollOutcomes.inc({ outcome: result.outcome });
    return c.body(pollResultJson(result, envelopeJson), 200, jsonHeaders());
  });

  app.post('/v1/ack', async (c) => {
    const consumer = requireConsumer(c);
    const body = parseInput(ackSchema, await readJsonBody(c, s.config.maxBodyBytes));
    const committed = await ack(s, consumer, cursorPosition(s.log, body.cursor, 'cursor'));
    return c.json({ cursor: encodeCursor(committed) });
  });

  app.get('/v1/consumer', (c) => c.json(consumerView(s, requireConsumer(c))));

  return app;
}

function pollErrorOutcome(error: unknown): string {
  if (!(error instanceof ApiError)) return 'error';
  if (error.code === 'superseded') return 'superseded';
  if (error.code === 'cursor_expired') return 'expired';
  if (error.code === 'push_mode' || error.code === 'not_found' || error.code === 'unauthorized') return 'ended';
  return 'error';
}

function numberParam(
  text: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
  integer: boolean,
): number {
  if (text === undefined) return fallback;
  const n = /^\d+(\.\d+)?$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw invalidField(name, `must be ${integer ? 'an integer' : 'a number of seconds'} from ${min} to ${max}, not "${text.slice(0, 40)}"`);
  }
  return n;
}

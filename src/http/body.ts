/**
 * Reads a JSON request body within a size bound.
 *
 * A body over the bound is refused as soon as it is known to be too large (from
 * Content-Length, or while counting a chunked body) without buffering the rest. The 413 must
 * still reach the client: closing a socket that has unread input makes the peer see a reset
 * instead of our answer, so the rest of the body is read and dropped (bounded in time) and the
 * connection is closed only after the answer.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { ApiError } from '../errors.ts';
import { header } from './incoming.ts';

const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i;
/** How long a refused body may keep arriving before the connection is cut. */
const DRAIN_MS = 10_000;

export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
  const type = header(c, 'content-type');
  if (type !== undefined && !JSON_TYPE.test(type)) {
    throw new ApiError('unsupported_media_type', `content-type must be application/json, not "${type}"`);
  }
  const declared = header(c, 'content-length');
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (declared !== undefined && Number(declared) > maxBytes) {
    if (incoming) drainAndClose(c, incoming);
    throw tooLarge(maxBytes);
  }
  const bytes = incoming ? await readIncoming(c, incoming, maxBytes) : await readWeb(c.req.raw, maxBytes);
  if (bytes.length === 0) throw new ApiError('invalid_json', 'the request body is empty; send a JSON document');
  const text = bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError('invalid_json', `the request body is not valid JSON: ${(error as Error).message}`);
  }
  // JSON.parse turns numbers beyond ±1.8e308 into Infinity, which would be stored as null.
  // Only a literal with a 3-digit exponent or 309+ digits can do that: check those bodies only.
  if (MAYBE_HUGE_NUMBER.test(text) && hasNonFiniteNumber(value)) {
    throw new ApiError('invalid_json', 'the request body has a number out of range (beyond ±1.8e308); send it as a string');
  }
  return value;
}

const MAYBE_HUGE_NUMBER = /\d[eE]\+?\d{3}|\d{309}/;

/** Walks iteratively: the value may be nested deeper than the stack allows recursion. */
function hasNonFiniteNumber(root: unknown): boolean {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return true;
    } else if (v !== null && typeof v === 'object') {
      for (const child of Object.values(v)) stack.push(child);
    }
  }
  return false;
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError('payload_too_large', `the request body exceeds ${maxBytes} bytes`, { limit: maxBytes });
}

function readIncoming(c: Context, incoming: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      cleanup();
      drainAndClose(c, incoming);
      reject(tooLarge(maxBytes));
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new ApiError('invalid_request', `the request body could not be read: ${error.message}`));
    };
    const onClose = () => {
      if (!incoming.complete) onError(new Error('the client closed the connection'));
    };
    function cleanup() {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    }
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
    incoming.on('close', onClose);
  });
}

/** Drops the rest of a refused body so the client reads our answer, then closes. */
function drainAndClose(c: Context, incoming: IncomingMessage): void {
  c.header('connection', 'close');
  incoming.resume();
  const timer = setTimeout(() => incoming.socket?.destroy(), DRAIN_MS);
  timer.unref();
  incoming.once('end', () => clearTimeout(timer));
  incoming.once('close', () => clearTimeout(timer));
}

async function readWeb(request: Request, maxBytes: number): Promise<Buffer> {
  if (!request.body) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/**
 * Reads a JSON request body within a size bound.
 *
 * 1. Only publishing takes large bodies (POLLGATE_MAX_BODY_BYTES); every other route takes a
 *    small document and a small bound (SMALL_BODY_BYTES, CONFIG_BODY_BYTES), so no caller
 *    with any key can make the server parse megabytes where a cursor is expected.
 * 2. A body over the bound is refused as soon as it is known to be too large (from
 *    Content-Length, or while counting a chunked body) without buffering the rest. The 413
 *    must still reach the client: the rest of the body is read and dropped, and the
 *    connection stays open meanwhile (closing a socket with unread input resets it, and the
 *    client loses our answer). Node's request timeout bounds how long that lasts.
 * 3. Every check on the bytes is linear: the charset is UTF-8 (declared otherwise: 415), the
 *    bytes are valid UTF-8 (else 400 naming the offset), JSON.parse, then one walk of the
 *    parsed value for numbers out of range. No regular expression runs over the body.
 */
import type { IncomingMessage } from 'node:http';
import { isUtf8 } from 'node:buffer';
import type { Context } from 'hono';
import { ApiError } from '../errors.ts';
import { header } from './incoming.ts';

/** Acks, seeks, the bridge toggle, key rotation: a cursor or a flag. */
export const SMALL_BODY_BYTES = 64 * 1024;
/** A consumer's or a webhook's settings: the largest valid one (32 headers of 4096 characters) fits. */
export const CONFIG_BODY_BYTES = 512 * 1024;

/** The bound of a route: a size in bytes, or one of the named small bounds above. */
export type BodyLimit = number | 'small' | 'config';

const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i;
const CHARSET = /;\s*charset\s*=\s*(?:"([^"]*)"|([^\s;]*))/i;

export async function readJsonBody(c: Context, limit: BodyLimit): Promise<unknown> {
  const maxBytes = limit === 'small' ? SMALL_BODY_BYTES : limit === 'config' ? CONFIG_BODY_BYTES : limit;
  const type = header(c, 'content-type');
  if (type !== undefined) checkContentType(type);
  const declared = header(c, 'content-length');
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (declared !== undefined && Number(declared) > maxBytes) {
    incoming?.resume();
    throw tooLarge(maxBytes);
  }
  const bytes = incoming ? await readIncoming(incoming, maxBytes) : await readWeb(c.req.raw, maxBytes);
  if (bytes.length === 0) throw new ApiError('invalid_json', 'the request body is empty; send a JSON document');
  if (!isUtf8(bytes)) {
    throw new ApiError('invalid_json', `the request body is not valid UTF-8 (at byte ${firstInvalidUtf8(bytes)}); send JSON encoded as UTF-8`);
  }
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new ApiError('invalid_json', `the request body is not valid JSON: ${(error as Error).message}`);
  }
  // JSON.parse turns numbers beyond ±1.8e308 into Infinity, which would be stored as null.
  if (hasNonFiniteNumber(value)) {
    throw new ApiError('invalid_json', 'the request body has a number out of range (beyond ±1.8e308); send it as a string');
  }
  return value;
}

function checkContentType(type: string): void {
  if (!JSON_TYPE.test(type)) {
    throw new ApiError('unsupported_media_type', `content-type must be application/json, not "${type.slice(0, 200)}"`);
  }
  const charset = CHARSET.exec(type);
  if (charset) {
    const name = (charset[1] ?? charset[2] ?? '').toLowerCase();
    if (name !== 'utf-8' && name !== 'utf8') {
      throw new ApiError('unsupported_media_type', `charset "${name.slice(0, 100)}" is not supported; send JSON encoded as UTF-8 (charset=utf-8, or no charset)`);
    }
  }
}

/**
 * Walks iteratively (the value may be nested deeper than the stack allows recursion): one
 * visit per value, and no array of values built per object.
 */
function hasNonFiniteNumber(root: unknown): boolean {
  if (typeof root !== 'object' || root === null) return typeof root === 'number' && !Number.isFinite(root);
  const stack: object[] = [root];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const child: unknown = v[i];
        if (typeof child === 'number') {
          if (!Number.isFinite(child)) return true;
        } else if (typeof child === 'object' && child !== null) stack.push(child);
      }
    } else {
      // JSON.parse makes plain objects: every key is an own enumerable one.
      for (const key in v) {
        const child = (v as Record<string, unknown>)[key];
        if (typeof child === 'number') {
          if (!Number.isFinite(child)) return true;
        } else if (typeof child === 'object' && child !== null) stack.push(child);
      }
    }
  }
  return false;
}

/** The offset of the first byte that breaks UTF-8 (only called once the buffer is known to be invalid). */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    let need: number;
    let min: number;
    if (b < 0x80) {
      i += 1;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return i;
    }
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const next = bytes[i + k];
      if (next === undefined || (next & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (next & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are not UTF-8.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return i;
    i += need + 1;
  }
  return bytes.length;
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError('payload_too_large', `the request body exceeds ${maxBytes} bytes`, { limit: maxBytes });
}

function readIncoming(incoming: IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) return void chunks.push(chunk);
      cleanup();
      // Keep reading and dropping: the answer goes out while the rest arrives (see 2. above).
      incoming.resume();
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

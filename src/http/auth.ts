/**
 * Bearer-key authentication for /v1. Resolves who is calling (the admin, or one consumer)
 * and leaves scope checks to the routes through requireAdmin / requireConsumer.
 * Keys are compared by SHA-256 in constant time; an unknown consumer key id still costs a
 * comparison so timing does not tell which ids exist.
 */
import type { Context } from 'hono';
import { consumerKeyId, hashKey, sameHash } from '../auth/keys.ts';
import { ApiError } from '../errors.ts';
import type { ConsumerRow, Store } from '../store/store.ts';
import { header } from './incoming.ts';

export type Principal = { kind: 'admin' } | { kind: 'consumer'; consumer: ConsumerRow };

export type Env = { Variables: { principal: Principal } };

const DUMMY_HASH = hashKey('pollgate: no such key');

/** Resolves the caller from the Bearer key and records it on the context, or throws 401. */
export async function authenticate(c: Context<Env>, store: Store, adminKeyHash: Buffer): Promise<void> {
  const authorization = header(c, 'authorization');
  const match = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  if (!match) {
    throw new ApiError('unauthorized', 'send your key as "Authorization: Bearer <key>"');
  }
  const key = match[1]!;
  const hash = hashKey(key);
  const keyId = consumerKeyId(key);
  if (keyId) {
    const consumer = await store.getConsumerByKeyId(keyId);
    if (sameHash(hash, consumer?.key_hash ?? DUMMY_HASH) && consumer) {
      c.set('principal', { kind: 'consumer', consumer });
      return;
    }
  } else if (sameHash(hash, adminKeyHash)) {
    c.set('principal', { kind: 'admin' });
    return;
  }
  throw new ApiError('unauthorized', 'the key is not valid');
}

export function requireAdmin(c: Context<Env>): void {
  if (c.get('principal').kind !== 'admin') {
    throw new ApiError('forbidden', 'this call needs the admin key; a consumer key only reads and acks its own consumer');
  }
}

export function requireConsumer(c: Context<Env>): ConsumerRow {
  const p = c.get('principal');
  if (p.kind !== 'consumer') {
    throw new ApiError('forbidden', 'this call needs a consumer key (pgk_…); the admin key is not a consumer');
  }
  return p.consumer;
}

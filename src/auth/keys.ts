/**
 * API keys. Consumer keys look like pgk_<12-char id><32-char secret>: the id finds the row,
 * the SHA-256 of the whole key is what is stored and compared (in constant time). Keys carry
 * ~190 random bits, so a fast hash is enough; the plaintext is shown once and kept nowhere.
 * The admin key comes from POLLGATE_ADMIN_KEY or a 0600 file generated on first start.
 */
import * as crypto from 'node:crypto';
import { createHash, timingSafeEqual } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { customAlphabet } from 'nanoid';

const ALPHANUMERIC = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const keyIdChars = customAlphabet(ALPHANUMERIC, 12);
const secretChars = customAlphabet(ALPHANUMERIC, 32);
const CONSUMER_KEY = /^pgk_([0-9A-Za-z]{12})[0-9A-Za-z]{32}$/;

/** crypto.hash (Node ≥ 20.12): one-shot, no Hash object per request, about a third cheaper. */
const oneShot = typeof crypto.hash === 'function' ? crypto.hash : null;

export function hashKey(key: string): Buffer {
  return oneShot ? oneShot('sha256', key, 'buffer') : createHash('sha256').update(key).digest();
}

export function newConsumerKey(): { key: string; keyId: string; hash: Buffer } {
  const keyId = keyIdChars();
  const key = `pgk_${keyId}${secretChars()}`;
  return { key, keyId, hash: hashKey(key) };
}

/** The lookup id inside a consumer key, or null if the text is not shaped like one. */
export function consumerKeyId(key: string): string | null {
  return CONSUMER_KEY.exec(key)?.[1] ?? null;
}

export function sameHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface AdminKey {
  /** Hash of the admin key; the plaintext is not kept in memory longer than start-up. */
  hash: Buffer;
  /** The key when it was generated just now (to print once), else null. */
  generated: string | null;
}

export function generateAdminKey(): string {
  return `pga_${customAlphabet(ALPHANUMERIC, 40)()}`;
}

/** Reads or creates the admin key. A configured key wins over the file. */
export function loadAdminKey(dataDir: string, configured: string | undefined): AdminKey {
  if (configured) return { hash: hashKey(configured), generated: null };
  const file = join(dataDir, 'admin.key');
  try {
    return { hash: hashKey(readFileSync(file, 'utf8').trim()), generated: null };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = generateAdminKey();
  // 'wx': never overwrite a key another process created in the meantime.
  const fd = openSync(file, 'wx', 0o600);
  try {
    writeSync(fd, `${key}\n`);
  } finally {
    closeSync(fd);
  }
  return { hash: hashKey(key), generated: key };
}

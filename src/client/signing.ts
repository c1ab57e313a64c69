/**
 * Standard Webhooks signing, as the push bridge signs: webhook-id, webhook-timestamp and
 * webhook-signature "v1,<base64 HMAC-SHA256 of `${id}.${timestamp}.${body}`>" under the secret
 * "whsec_<base64>" (the HMAC key is the decoded bytes). Any Standard Webhooks library verifies
 * what this produces. Node's crypto only: the client package has no dependencies.
 */
import { createHmac, randomBytes } from 'node:crypto';

const SECRET = /^whsec_([A-Za-z0-9+/]+={0,2})$/;

export function generateSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** The problem with a caller-chosen secret, or null when it is usable. */
export function secretProblem(secret: string): string | null {
  const m = SECRET.exec(secret);
  if (!m) return 'must be "whsec_" followed by base64';
  const bytes = Buffer.from(m[1]!, 'base64').length;
  if (bytes < 24 || bytes > 64) return `must decode to 24 to 64 bytes, not ${bytes}`;
  return null;
}

export function signatureHeaders(secret: string, id: string, timestampSeconds: number, body: string): Record<string, string> {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': `v1,${signature}`,
  };
}

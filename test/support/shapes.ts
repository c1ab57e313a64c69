/**
 * Helpers shared by the delivery-shape tests (issue 12): configuring a webhook, checking a
 * received request's Standard Webhooks signature over whatever bytes arrived (JSON or not, or
 * none), hostile values for `data`, and a logger whose lines a test can read.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { Webhook } from 'standardwebhooks';
import type { TestGateway } from './gateway.ts';
import type { ReceivedRequest } from './receiver.ts';

export const hookPath = (id: string) => `/v1/consumers/${id}/webhook`;

export function putHook(g: TestGateway, id: string, body: unknown) {
  return g.json(hookPath(id), { method: 'PUT', body });
}

export function patchHook(g: TestGateway, id: string, body: unknown) {
  return g.json(hookPath(id), { method: 'PATCH', body });
}

/** PUT that must succeed (201 or 200); answers the view (with the secret when shown). */
export async function mustPut(g: TestGateway, id: string, body: unknown): Promise<any> {
  const r = await putHook(g, id, body);
  assert.ok(r.status === 201 || r.status === 200, `PUT webhook: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/**
 * Checks the signature with the standardwebhooks library over the bytes received, whatever they
 * are (XML, a form, nothing): jsonParse off, so only the signature is judged.
 */
export function verifyBytes(secret: string, req: ReceivedRequest): void {
  assert.ok(req.headers['webhook-signature'], `request ${req.n} carries a signature`);
  new Webhook(secret).verify(
    req.body,
    {
      'webhook-id': String(req.headers['webhook-id']),
      'webhook-timestamp': String(req.headers['webhook-timestamp']),
      'webhook-signature': String(req.headers['webhook-signature']),
    },
    { jsonParse: false } as never,
  );
}

/**
 * Text a template must carry exactly: quotes, markup, ampersands, CR/LF and tab, backslashes,
 * unicode (BMP and astral), Mustache braces, U+2028.
 */
export const HOSTILE =
  `He said "hi" & 'bye' <b>bold</b> </text> ]]> a\r\nb\rc\nd\te \\ \\" \\u0041 {{data.secret}} }} {{ {{{x}}} ` +
  `é ü ß 中文 😀 𝄞 \u2028\u2029 %20 + = & ? # / .. end`;

/** A string of about 100 kB with the hostile text repeated in it. */
export const LONG = (HOSTILE + 'x'.repeat(900)).repeat(100).slice(0, 100_000);

/** A pino logger writing JSON lines into `lines` (everything, level debug and up). */
export function capturedLogger(): { logger: Logger; lines: string[]; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines, text: () => lines.join('\n') };
}

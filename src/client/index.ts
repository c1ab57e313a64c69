/**
 * pollgate's client SDK, the `pollgate-client` package (also `pollgate/client` in the server's):
 * `import { createClient, createAdminClient } from 'pollgate-client'`.
 *
 *   const client = createClient({ url, key: process.env.POLLGATE_KEY! });
 *   for await (const event of client.events({ signal })) {
 *     await handle(event); // acked (a page at a time) only after this returns
 *   }
 *
 * Depends on nothing but the platform's fetch (Node 20+) and imports nothing of the server.
 * The tail and forward agents (cli/) are the package's command, not part of this API. See consumer.ts for the delivery guarantees of the iterators.
 */
export { createClient, type ClientOptions, type IterateOptions, type PollgateClient, type RetryInfo } from './consumer.ts';
export { createAdminClient, type AdminClient, type CallOptions } from './admin.ts';
export { CursorExpiredError, NetworkError, PayloadTooLargeError, PollgateError, isRetryable, type NetworkErrorKind } from './errors.ts';
export { backoffDelay, type BackoffOptions } from './backoff.ts';
export type { ClientLogger, FetchLike, TransportOptions } from './http.ts';
export type * from './types.ts';

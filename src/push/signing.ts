/**
 * Standard Webhooks signing for the push bridge: the very code the client package's `forward`
 * signs with (src/client/signing.ts), so the two can never sign differently.
 */
export { generateSecret, secretProblem, signatureHeaders } from '../client/signing.ts';

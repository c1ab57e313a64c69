/**
 * The admin client (the admin key): publishing, consumers, webhooks, the bridge toggle. One
 * method per endpoint, typed by hand (types.ts), no retries: a caller that publishes decides
 * itself whether a failed publish is retried (with an `id`, retrying is safe — the id is the
 * idempotency key); isRetryable(error) says whether it is worth it. A batch over the gateway's
 * body limit is a PayloadTooLargeError (413), final: split it.
 */
import { createTransport, type TransportOptions } from './http.ts';
import type {
  BridgeState,
  Consumer,
  ConsumerList,
  ConsumerWithKey,
  CreateConsumerInput,
  DeliveriesOptions,
  DeliveryList,
  Envelope,
  ListConsumersOptions,
  Position,
  PublishInput,
  UpdateConsumerInput,
  Webhook,
  WebhookInput,
  WebhookPreview,
  WebhookTestResult,
  WebhookTryInput,
  WebhookWithSecret,
} from './types.ts';

export interface CallOptions {
  signal?: AbortSignal;
}

export interface AdminClient {
  /** One event: its envelope (the original one when `id` was already published). */
  publish(event: PublishInput, options?: CallOptions): Promise<Envelope>;
  /** 1 to 1000 events, committed all or nothing: their envelopes in request order. */
  publish(events: PublishInput[], options?: CallOptions): Promise<Envelope[]>;
  createConsumer(input: CreateConsumerInput, options?: CallOptions): Promise<ConsumerWithKey>;
  /** One page; follow `next` for more. */
  listConsumers(options?: ListConsumersOptions & CallOptions): Promise<ConsumerList>;
  getConsumer(id: string, options?: CallOptions): Promise<Consumer>;
  updateConsumer(id: string, patch: UpdateConsumerInput, options?: CallOptions): Promise<Consumer>;
  seek(id: string, to: Position, options?: CallOptions): Promise<Consumer>;
  /** The old key stops working at once; the new one is shown only here. */
  rotateKey(id: string, options?: CallOptions): Promise<ConsumerWithKey>;
  deleteConsumer(id: string, options?: CallOptions): Promise<void>;
  /** Puts the consumer in push mode (unless enabled:false); `secret` only when set or generated. */
  setWebhook(id: string, webhook: WebhookInput, options?: CallOptions): Promise<WebhookWithSecret>;
  /** Changes only the given fields, e.g. `{ enabled: false }` pauses this consumer's pushing. */
  updateWebhook(id: string, patch: Partial<WebhookInput>, options?: CallOptions): Promise<WebhookWithSecret>;
  getWebhook(id: string, options?: CallOptions): Promise<Webhook>;
  /**
   * The request the webhook would send for an event (`cursor`) or a sample, without sending it;
   * `webhook` tries unsaved changes. Moves nothing; credentials come back as "•••".
   */
  previewWebhook(id: string, input?: WebhookTryInput, options?: CallOptions): Promise<WebhookPreview>;
  /**
   * Sends that request now and answers the receiver's status, headers and first KiB of body.
   * Records no attempt and moves no cursor; works while the webhook or the bridge is paused.
   */
  testWebhook(id: string, input?: WebhookTryInput, options?: CallOptions): Promise<WebhookTestResult>;
  /** Back to pull mode at the cursor the bridge reached; answers the consumer. */
  deleteWebhook(id: string, options?: CallOptions): Promise<Consumer>;
  /** Delivery attempts, newest first. */
  deliveries(id: string, options?: DeliveriesOptions & CallOptions): Promise<DeliveryList>;
  bridge(options?: CallOptions): Promise<BridgeState>;
  /** Pauses (false) or resumes (true) all pushing. */
  setBridge(enabled: boolean, options?: CallOptions): Promise<BridgeState>;
}

export function createAdminClient(options: TransportOptions): AdminClient {
  const t = createTransport(options);
  const seg = (id: string) => encodeURIComponent(id);

  async function publish(input: PublishInput | PublishInput[], o?: CallOptions): Promise<Envelope | Envelope[]> {
    if (Array.isArray(input)) {
      const r = await t.request<{ events: Envelope[] }>({ method: 'POST', path: '/v1/events', body: input, signal: o?.signal });
      return r.events;
    }
    return t.request<Envelope>({ method: 'POST', path: '/v1/events', body: input, signal: o?.signal });
  }

  return {
    publish: publish as AdminClient['publish'],
    createConsumer: (input, o) =>
      t.request({ method: 'POST', path: '/v1/consumers', body: input, signal: o?.signal }),
    listConsumers: (o = {}) =>
      t.request({ path: '/v1/consumers', query: { tenant: o.tenant, limit: o.limit, after: o.after }, signal: o.signal }),
    getConsumer: (id, o) => t.request({ path: `/v1/consumers/${seg(id)}`, signal: o?.signal }),
    updateConsumer: (id, patch, o) =>
      t.request({ method: 'PATCH', path: `/v1/consumers/${seg(id)}`, body: patch, signal: o?.signal }),
    seek: (id, to, o) =>
      t.request({ method: 'POST', path: `/v1/consumers/${seg(id)}/seek`, body: { to }, signal: o?.signal }),
    rotateKey: (id, o) => t.request({ method: 'POST', path: `/v1/consumers/${seg(id)}/key`, signal: o?.signal }),
    deleteConsumer: async (id, o) => {
      await t.request({ method: 'DELETE', path: `/v1/consumers/${seg(id)}`, signal: o?.signal });
    },
    setWebhook: (id, webhook, o) =>
      t.request({ method: 'PUT', path: `/v1/consumers/${seg(id)}/webhook`, body: webhook, signal: o?.signal }),
    updateWebhook: (id, patch, o) =>
      t.request({ method: 'PATCH', path: `/v1/consumers/${seg(id)}/webhook`, body: patch, signal: o?.signal }),
    getWebhook: (id, o) => t.request({ path: `/v1/consumers/${seg(id)}/webhook`, signal: o?.signal }),
    previewWebhook: (id, input = {}, o) =>
      t.request({ method: 'POST', path: `/v1/consumers/${seg(id)}/webhook/preview`, body: input, signal: o?.signal }),
    testWebhook: (id, input = {}, o) =>
      t.request({ method: 'POST', path: `/v1/consumers/${seg(id)}/webhook/test`, body: input, signal: o?.signal }),
    deleteWebhook: (id, o) =>
      t.request({ method: 'DELETE', path: `/v1/consumers/${seg(id)}/webhook`, signal: o?.signal }),
    deliveries: (id, o = {}) =>
      t.request({
        path: `/v1/consumers/${seg(id)}/deliveries`,
        query: { limit: o.limit, before: o.before },
        signal: o.signal,
      }),
    bridge: (o) => t.request({ path: '/v1/bridge', signal: o?.signal }),
    setBridge: (enabled, o) => t.request({ method: 'PUT', path: '/v1/bridge', body: { enabled }, signal: o?.signal }),
  };
}

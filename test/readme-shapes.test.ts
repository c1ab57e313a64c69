/**
 * The README's "Shaping deliveries" examples, run as printed: each example's webhook is PUT on a
 * real gateway (its host swapped for a real local receiver), its event is published, and the
 * request the receiver gets must be the one the README shows, byte for byte: method, path and
 * query, the listed headers, the body. The signature must verify over the bytes received.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gatewayFor } from './support/gateway.ts';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { receiverFor, type ReceivedRequest } from './support/receiver.ts';

/**
 * standardwebhooks checks the signature over the raw body, then JSON-parses it: for a form or
 * XML body a SyntaxError means the signature held. A changed body must fail the check itself.
 */
function verifyBytes(secret: string, req: ReceivedRequest): void {
  const headers = {
    'webhook-id': String(req.headers['webhook-id']),
    'webhook-timestamp': String(req.headers['webhook-timestamp']),
    'webhook-signature': String(req.headers['webhook-signature']),
  };
  try {
    new Webhook(secret).verify(req.body, headers);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
  }
  assert.throws(() => new Webhook(secret).verify(`${req.body} `, headers), WebhookVerificationError);
}

interface Example {
  name: string;
  webhook: Record<string, unknown> & { url: string };
  event: Record<string, unknown>;
  expected: { method: string; path: string; headers: Record<string, string>; body: string };
}

function readExamples(): Example[] {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = /## Shaping deliveries\n([\s\S]*?)\n## /.exec(readme)?.[1];
  if (!section) throw new Error('README.md: no "## Shaping deliveries" section');
  const examples: Example[] = [];
  for (const m of section.matchAll(/<!-- shape-example: ([\w-]+) -->/g)) {
    const blocks: Array<{ lang: string | undefined; text: string }> = [...section.slice(m.index).matchAll(/```(\w+)\n([\s\S]*?)```/g)].slice(0, 3).map((b: RegExpMatchArray) => ({ lang: b[1], text: b[2]! }));
    assert.deepEqual(blocks.map((b) => b.lang), ['json', 'json', 'http'], `example ${m[1]}: a json webhook, a json event, an http request`);
    const [head, ...rest]: string[] = blocks[2]!.text.split('\n\n');
    const [requestLine, ...headerLines]: string[] = head!.split('\n');
    const [method, path] = requestLine!.split(' ');
    examples.push({
      name: m[1]!,
      webhook: JSON.parse(blocks[0]!.text),
      event: JSON.parse(blocks[1]!.text),
      expected: {
        method: method!,
        path: path!,
        headers: Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()])),
        body: rest.join('\n\n').replace(/\n$/, ''),
      },
    });
  }
  return examples;
}

const examples = readExamples();
let tenantSeq = 0;

describe('README: Shaping deliveries', () => {
  test('has the three worked examples', () => {
    assert.deepEqual(examples.map((e) => e.name), ['crm-sync', 'erp-sync', 'chat-alerts']);
  });

  for (const example of examples) {
    test(`${example.name}: the receiver gets exactly the request the README shows`, async (t) => {
      const g = await gatewayFor(t, { config: { allowPrivateTargets: true } });
      const rx = await receiverFor(t);
      const tenant = `readme-${example.name}-${process.pid}-${++tenantSeq}`;
      const consumer = await g.createConsumer({ tenant, name: example.name });
      const url = example.webhook.url.replace(/^https:\/\/[^/]+\//, rx.url);
      const put = await g.json(`/v1/consumers/${consumer.id}/webhook`, { method: 'PUT', body: { ...example.webhook, url } });
      assert.equal(put.status, 201, JSON.stringify(put.body));
      const published = await g.json('/v1/events', { method: 'POST', body: { ...example.event, tenant } });
      assert.equal(published.status, 201, JSON.stringify(published.body));

      await rx.waitForCount(1);
      const req = rx.requests[0]!;
      assert.equal(req.method, example.expected.method);
      assert.equal(req.path, example.expected.path);
      for (const [name, value] of Object.entries(example.expected.headers)) assert.equal(req.headers[name], value, `header ${name}`);
      assert.equal(req.body, example.expected.body);
      verifyBytes(put.body.secret, req);
      // The credentials never come back.
      const shown = JSON.stringify((await g.json(`/v1/consumers/${consumer.id}/webhook`)).body);
      for (const secret of ['s3cret', 'erp-key-123', 'chat-token-456']) assert.ok(!shown.includes(secret), `GET shows no ${secret}`);
    });
  }
});

/**
 * GET /openapi.json against the app it describes (SPEC: Operations, Errors). A real gateway on a
 * loopback port; the document is fetched without a key and checked four ways:
 *
 * 1. Structure: valid OpenAPI 3.1 by @seriousme/openapi-schema-validator (the OpenAPI
 *    Initiative's JSON schemas), plus what that schema cannot see (path templates and their
 *    parameters, unique operation ids).
 * 2. Routes: the routes the built Hono app serves (`app.routes`) and the document's operations
 *    are the same set, both ways.
 * 3. Validation: the request body schemas are the zod schemas that validate (compared as JSON
 *    Schema), and the server agrees with them: a field the document marks required is a 400
 *    naming it when missing, an unknown field is a 400 naming it, limits match (timeout_ms,
 *    the poll's wait bound from config).
 * 4. Conformance: every call in this file goes through `api()`, which asserts that the status
 *    the server answered is documented for that operation and that the body validates against
 *    the documented schema (errors against the shared Error schema). A closing test checks that
 *    every documented operation was answered 2xx at least once.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { z } from 'zod';
import { ackSchema } from '../src/http/consumer-api.ts';
import { seekSchema } from '../src/http/consumers.ts';
import { eventInputSchema, MAX_BATCH, TENANT } from '../src/http/publish.ts';
import { bridgeSchema, MAX_TIMEOUT_MS, trySchema, webhookPatchSchema, webhookSchema } from '../src/http/webhooks.ts';
import { METHODS } from '../src/push/shape.ts';
import { startGateway, type TestGateway } from './support/gateway.ts';
import { startReceiver, unusedPort } from './support/receiver.ts';

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
/** POST/PUT/PATCH routes that take no body (a real call below shows they work without one). */
const NO_BODY = new Set(['post /v1/consumers/{id}/key']);
const MAX_WAIT_S = 45;

/** `:id` → `{id}`. */
const toTemplate = (honoPath: string) => honoPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** "get /v1/events" for each route the app really answers; app.use() middleware is method ALL. */
function servedRoutes(app: { routes: Array<{ method: string; path: string }> }): Set<string> {
  const out = new Set<string>();
  for (const r of app.routes) {
    if (r.method === 'ALL') continue;
    out.add(`${r.method.toLowerCase()} ${toTemplate(r.path)}`);
  }
  return out;
}

function documentedOps(doc: any): Array<{ key: string; method: string; path: string; op: any }> {
  const out = [];
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    for (const [method, op] of Object.entries<any>(item)) {
      if (HTTP_METHODS.includes(method)) out.push({ key: `${method} ${path}`, method, path, op });
    }
  }
  return out;
}

/** The JSON Schema zod makes of a request schema, as the document embeds it. */
function inputSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' });
  return rest;
}

/** A JSON Schema without what only documents it (descriptions, examples): what validation sees. */
function withoutDocs(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withoutDocs);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'description' || k === 'examples') continue;
    // `properties` maps names to schemas: a property may be called "description".
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as object).map(([name, sub]) => [name, withoutDocs(sub)])) : withoutDocs(v);
  }
  return out;
}

function fill(template: string, params: Record<string, string>): string {
  return template.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const value = params[name];
    assert.ok(value !== undefined, `no value for {${name}} in ${template}`);
    return encodeURIComponent(value);
  });
}

describe('GET /openapi.json', () => {
  let g: TestGateway;
  let raw: any;
  /** The document with every $ref replaced by what it names. */
  let doc: any;
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  const validators = new Map<string, ValidateFunction>();
  /** "post /v1/events" → statuses seen. */
  const seen = new Map<string, Set<number>>();

  /**
   * One call of a documented operation. Asserts that the answer's status is listed for the
   * operation and that its body matches the documented schema; answers status and body.
   */
  async function api(
    method: string,
    template: string,
    opts: { params?: Record<string, string>; query?: string; key?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: any; text: string; headers: Headers }> {
    const key = `${method} ${template}`;
    const op = doc.paths[template]?.[method];
    assert.ok(op, `${key} is not in the document`);
    const path = fill(template, opts.params ?? {}) + (opts.query ? `?${opts.query}` : '');
    const res = await g.call(path, {
      method: method.toUpperCase(),
      ...(opts.key !== undefined ? { key: opts.key } : {}),
      ...(opts.body !== undefined ? { body: opts.body } : {}),
      ...(opts.raw !== undefined ? { raw: opts.raw } : {}),
      ...(opts.headers ? { headers: opts.headers } : {}),
    });
    const text = await res.text();
    const status = res.status;
    const where = `${key} → ${status} ${text.slice(0, 300)}`;
    const response = op.responses[String(status)];
    assert.ok(response, `${where}: status ${status} is not documented (documented: ${Object.keys(op.responses).join(', ')})`);
    if (!seen.has(key)) seen.set(key, new Set());
    seen.get(key)!.add(status);

    const type = res.headers.get('content-type') ?? '';
    let body: any = null;
    if (!response.content) {
      assert.equal(text, '', `${where}: documented without content`);
    } else if (response.content['application/json']?.schema) {
      assert.match(type, /^application\/json/, `${where}: content-type`);
      body = JSON.parse(text);
      const id = `${key} ${status}`;
      let validate = validators.get(id);
      if (!validate) validators.set(id, (validate = ajv.compile(response.content['application/json'].schema)));
      assert.ok(validate(body), `${where}: does not match the documented schema: ${ajv.errorsText(validate.errors)}`);
    } else {
      const [media] = Object.keys(response.content);
      assert.ok(type.startsWith(media!), `${where}: content-type ${type}, documented ${media}`);
    }
    return { status, body, text, headers: res.headers };
  }

  before(async () => {
    g = await startGateway({ config: { maxWaitMs: MAX_WAIT_S * 1000, allowPrivateTargets: true, maxEventBytes: 1024 } });
    const res = await fetch(`${g.url}/openapi.json`);
    assert.equal(res.status, 200);
    raw = await res.json();
    const validator = new Validator();
    const result = await validator.validate(structuredClone(raw));
    assert.ok(result.valid, `the document is not valid OpenAPI: ${JSON.stringify(result.errors, null, 1)?.slice(0, 2000)}`);
    doc = validator.resolveRefs();
  });
  after(async () => {
    await g?.close();
  });

  test('is served without a key as JSON: OpenAPI 3.1, valid against the 3.1 schema', async () => {
    for (const headers of [{}, { authorization: 'Bearer not-a-key' }]) {
      const res = await fetch(`${g.url}/openapi.json`, { headers });
      assert.equal(res.status, 200, 'no key needed; a wrong key is ignored');
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      const body = await res.json();
      assert.deepEqual(body, raw, 'the same document every time');
    }
    assert.match(raw.openapi, /^3\.1\.\d+$/);
    assert.equal(raw.info.title, 'pollgate');
    assert.equal(typeof raw.info.version, 'string');

    // The validator is live: it refuses a broken copy (a response without its required description).
    const broken = structuredClone(raw);
    delete broken.paths['/v1/ack'].post.responses['200'].description;
    const check = await new Validator().validate(broken);
    assert.equal(check.valid, false, 'a response without a description must be refused');
  });

  test('path templates, path parameters and operation ids are consistent', () => {
    const ids = new Set<string>();
    for (const { key, path, op } of documentedOps(raw)) {
      const inTemplate = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared = (op.parameters ?? []).filter((p: any) => p.in === 'path');
      assert.deepEqual(declared.map((p: any) => p.name).sort(), inTemplate, `${key}: path parameters`);
      for (const p of declared) assert.equal(p.required, true, `${key}: path parameter ${p.name} is required`);
      assert.equal(typeof op.operationId, 'string', `${key}: operationId`);
      assert.ok(!ids.has(op.operationId), `${key}: operationId ${op.operationId} is unique`);
      ids.add(op.operationId);
      assert.equal(typeof op.summary, 'string', `${key}: summary`);
    }
  });

  test('documents exactly the routes the app serves, both ways', () => {
    const served = servedRoutes(g.gateway.app);
    const documented = new Set(documentedOps(raw).map((o) => o.key));
    assert.ok(served.size >= 20, `found the app's routes (${served.size})`);
    const undocumented = [...served].filter((r) => !documented.has(r));
    const unserved = [...documented].filter((r) => !served.has(r));
    assert.deepEqual(undocumented, [], 'served but not in /openapi.json');
    assert.deepEqual(unserved, [], 'in /openapi.json but not served');
  });

  test('every operation lists its error answers with the {error:{code,message}} shape', () => {
    const errorSchema = doc.components.schemas.Error;
    assert.deepEqual(errorSchema.required, ['error']);
    assert.deepEqual([...errorSchema.properties.error.required].sort(), ['code', 'message']);
    assert.ok(errorSchema.properties.error.properties.code.enum.includes('invalid_request'));

    for (const { key, op } of documentedOps(doc)) {
      const statuses = Object.keys(op.responses);
      assert.ok(statuses.some((s) => /^2\d\d$/.test(s)), `${key}: a success answer`);
      assert.ok(op.responses.default, `${key}: a default (error) answer`);
      for (const status of [...statuses.filter((s) => /^[45]\d\d$/.test(s)), 'default']) {
        if (key === 'get /readyz' && status === '503') continue; // {status} or the error shape, checked below
        const schema = op.responses[status].content?.['application/json']?.schema;
        assert.deepEqual(schema, errorSchema, `${key} ${status}: the error shape`);
        assert.ok(op.responses[status].description.length > 0, `${key} ${status}: says when`);
      }
      const expect = (status: number, why: string) => assert.ok(op.responses[String(status)], `${key}: ${status} (${why})`);
      if (op.security?.length) {
        expect(401, 'it takes a key');
        expect(403, 'a key of the other kind is out of scope');
      }
      if (op.requestBody) {
        expect(400, 'a body is validated');
        expect(413, 'a body is bounded');
        expect(415, 'a body must be JSON');
      }
      if (op.parameters?.some((p: any) => p.in === 'query')) expect(400, 'a query is validated');
      if (op.parameters?.some((p: any) => p.in === 'path')) expect(404, 'an id may not exist');
    }
    assert.ok(doc.paths['/v1/events'].get.responses['409'], 'poll: superseded / push_mode');
    assert.ok(doc.paths['/v1/events'].get.responses['410'], 'poll: cursor_expired');
    assert.ok(doc.paths['/v1/ack'].post.responses['409'], 'ack: push_mode');
    assert.ok(doc.paths['/v1/consumers'].post.responses['409'], 'create: name taken');
    assert.ok(doc.paths['/readyz'].get.responses['503'], 'readyz: not ready');
  });

  test('security matches what each route enforces: 401 without a key, 403 with the other kind', async () => {
    const c = await g.createConsumer({ tenant: 'doc-auth' });
    const params = { id: c.id, tenant: 'doc-auth' };
    for (const { key, method, path, op } of documentedOps(raw)) {
      if (!op.security?.length) {
        const r = await api(method, path, { key: null });
        assert.equal(r.status, 200, `${key} needs no key`);
        continue;
      }
      const scheme = Object.keys(op.security[0])[0];
      assert.ok(scheme === 'adminKey' || scheme === 'consumerKey', `${key}: scheme ${scheme}`);
      const noKey = await api(method, path, { params, key: null });
      assert.equal(noKey.status, 401, `${key} without a key`);
      assert.equal(noKey.body.error.code, 'unauthorized');
      const wrongKey = await api(method, path, { params, key: 'pga_wrong' });
      assert.equal(wrongKey.status, 401, `${key} with a wrong key`);
      const other = await api(method, path, { params, key: scheme === 'adminKey' ? c.key : g.config.adminKey! });
      assert.equal(other.status, 403, `${key} with the ${scheme === 'adminKey' ? 'consumer' : 'admin'} key`);
      assert.equal(other.body.error.code, 'forbidden');
    }
  });

  test('every POST/PUT/PATCH route documents a JSON request body (key rotation takes none, and works without one)', async () => {
    for (const route of servedRoutes(g.gateway.app)) {
      const [method, path] = route.split(' ') as [string, string];
      if (!['post', 'put', 'patch'].includes(method)) continue;
      const op = doc.paths[path]?.[method];
      assert.ok(op, `${route} documented`);
      if (NO_BODY.has(route)) {
        assert.equal(op.requestBody, undefined, `${route} takes no body`);
        continue;
      }
      assert.equal(op.requestBody?.required, true, `${route}: requestBody.required`);
      const schema = op.requestBody.content?.['application/json']?.schema;
      assert.ok(schema && typeof schema === 'object' && Object.keys(schema).length > 0, `${route}: a JSON body schema`);
    }
    const c = await g.createConsumer({ tenant: 'doc-nobody' });
    const rotated = await api('post', '/v1/consumers/{id}/key', { params: { id: c.id } });
    assert.equal(rotated.status, 200);
    assert.match(rotated.body.key, /^pgk_/);
  });

  test('the request body schemas are the zod schemas that validate', () => {
    const body = (method: string, path: string) => raw.paths[path][method].requestBody.content['application/json'].schema;
    // The webhook bodies carry descriptions laid over the validating schemas; besides those, the same.
    assert.deepEqual(withoutDocs(body('put', '/v1/consumers/{id}/webhook')), inputSchema(webhookSchema));
    assert.deepEqual(withoutDocs(body('patch', '/v1/consumers/{id}/webhook')), inputSchema(webhookPatchSchema));
    assert.deepEqual(withoutDocs(body('post', '/v1/consumers/{id}/webhook/preview')), inputSchema(trySchema));
    assert.deepEqual(withoutDocs(body('post', '/v1/consumers/{id}/webhook/test')), inputSchema(trySchema));
    assert.deepEqual(body('put', '/v1/bridge'), inputSchema(bridgeSchema));
    assert.deepEqual(body('post', '/v1/ack'), inputSchema(ackSchema));
    assert.deepEqual(body('post', '/v1/consumers/{id}/seek'), inputSchema(seekSchema));
    assert.deepEqual(body('post', '/v1/events'), inputSchema(z.union([eventInputSchema, z.array(eventInputSchema).min(1).max(MAX_BATCH)])));

    // Spot checks of what validation requires and bounds.
    const put = body('put', '/v1/consumers/{id}/webhook');
    assert.deepEqual(put.required, ['url'], 'PUT webhook: url is required');
    assert.equal(put.additionalProperties, false);
    assert.equal(put.properties.timeout_ms.maximum, 30_000);
    assert.equal(put.properties.timeout_ms.maximum, MAX_TIMEOUT_MS);
    assert.equal(put.properties.timeout_ms.type, 'integer');
    assert.deepEqual(put.properties.method.enum, [...METHODS]);
    assert.deepEqual(put.properties.method.enum, ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
    assert.deepEqual(put.properties.format.anyOf, [{ type: 'string', enum: ['json', 'xml', 'form'] }, { type: 'null' }], 'format, or null for the default');
    const patch = body('patch', '/v1/consumers/{id}/webhook');
    assert.equal(patch.required, undefined, 'PATCH webhook: every field optional');
    assert.equal(patch.properties.timeout_ms.maximum, 30_000);
    assert.equal(patch.additionalProperties, false);
    const [single, batch] = body('post', '/v1/events').anyOf;
    assert.deepEqual(single.required, ['tenant', 'type', 'data'], 'data is required (null allowed)');
    assert.equal(single.properties.tenant.pattern, TENANT.source);
    assert.equal(batch.maxItems, MAX_BATCH);
    assert.equal(batch.minItems, 1);
    const create = body('post', '/v1/consumers');
    assert.deepEqual(create.required, ['tenant']);
    assert.equal(create.properties.filter.anyOf[0].additionalProperties, false, 'filters are strict');
  });

  test('the webhook fields are described, with templated examples; every request example is valid and accepted', async () => {
    const put = raw.paths['/v1/consumers/{id}/webhook'].put.requestBody.content['application/json'];
    for (const field of ['url', 'method', 'format', 'body', 'headers', 'auth', 'secret_header', 'signing', 'missing', 'retry', 'rate_limit', 'alerts']) {
      const description = put.schema.properties[field]?.description;
      assert.ok(typeof description === 'string' && description.length > 20, `PUT webhook: ${field} is described`);
    }
    assert.ok(put.schema.properties.body.examples.some((e: string) => /"\w+": \{\{data\}\}/.test(e)), 'a templated JSON body among the examples');
    assert.match(put.example.body, /\{\{data\.subject\}\}/, 'the PUT example is templated');
    const patch = raw.paths['/v1/consumers/{id}/webhook'].patch.requestBody.content['application/json'].schema;
    assert.equal(patch.properties.auth.description, put.schema.properties.auth.description, 'PATCH says the same');
    const preview = raw.paths['/v1/consumers/{id}/webhook/preview'].post.requestBody.content['application/json'].schema;
    assert.ok(preview.properties.webhook.properties.body.description, 'the unsaved changes of a preview are described too');

    // Each request example matches its schema, and the server takes it.
    const c = await g.createConsumer({ tenant: 'doc-examples', start: 'earliest' });
    const rx = await startReceiver();
    try {
      const [published] = (await g.publish([{ tenant: 'doc-examples', type: 'ticket.created', data: { subject: 'VPN "down"', link: 'https://h.example/1', priority: 2 } }])).events;
      let examples = 0;
      for (const { key, method, path, op } of documentedOps(doc)) {
        const media = op.requestBody?.content['application/json'];
        if (!media || media.example === undefined) continue;
        examples++;
        const validate = ajv.compile(media.schema);
        assert.ok(validate(media.example), `${key}: its example matches its schema: ${ajv.errorsText(validate.errors)}`);
        if (!path.startsWith('/v1/consumers/{id}/webhook')) continue;
        // Sent to a local receiver (the example's host is not ours) with the example's cursor swapped for a real one.
        let example = structuredClone(media.example);
        if (example.url) example.url = example.url.replace(/^https:\/\/[^/]+\//, rx.url);
        if (example.cursor) example.cursor = published.cursor;
        if (method === 'put') example = { ...example, enabled: false };
        const r = await api(method, path, { params: { id: c.id }, body: example });
        assert.ok(r.status >= 200 && r.status < 300, `${key}: its example is accepted: ${r.text}`);
      }
      assert.ok(examples >= 4, `request examples found: ${examples}`);
    } finally {
      await rx.close();
    }
  });

  test('the server agrees with every body schema: a valid sample passes, each required field and unknown fields are 400s naming them', async () => {
    const tenant = 'doc-bodies';
    const [first] = (await g.publish([{ tenant, type: 'doc.sample', data: 1 }])).events;
    const c = await g.createConsumer({ tenant, start: 'earliest' });
    const hooked = await g.createConsumer({ tenant });
    const nowhere = `http://127.0.0.1:${await unusedPort()}/`;
    // In execution order (the PATCH needs the webhook the PUT made). Each sample is valid.
    const samples: Array<{ method: string; path: string; body: Record<string, unknown>; key?: string }> = [
      { method: 'post', path: '/v1/events', body: { tenant, type: 'doc.sample', data: { n: 2 } } },
      { method: 'post', path: '/v1/ack', body: { cursor: first.cursor }, key: c.key },
      { method: 'post', path: '/v1/consumers', body: { tenant } },
      { method: 'patch', path: '/v1/consumers/{id}', body: { name: 'doc-renamed' } },
      { method: 'post', path: '/v1/consumers/{id}/seek', body: { to: 'earliest' } },
      { method: 'put', path: '/v1/consumers/{id}/webhook', body: { url: nowhere, enabled: false } },
      { method: 'patch', path: '/v1/consumers/{id}/webhook', body: { timeout_ms: 5_000 } },
      { method: 'post', path: '/v1/consumers/{id}/webhook/preview', body: { event: { data: { n: 1 } } } },
      { method: 'post', path: '/v1/consumers/{id}/webhook/test', body: { webhook: { body: '{"n": {{data.n}}}' } } },
      { method: 'put', path: '/v1/bridge', body: { enabled: true } },
    ];
    const documented = documentedOps(raw).filter((o) => o.op.requestBody).map((o) => o.key).sort();
    assert.deepEqual(samples.map((s) => `${s.method} ${s.path}`).sort(), documented, 'a sample for every body');

    for (const { method, path, body, key } of samples) {
      const label = `${method} ${path}`;
      const params = { id: path.includes('webhook') ? hooked.id : c.id };
      let schema = raw.paths[path][method].requestBody.content['application/json'].schema;
      if (schema.anyOf) schema = schema.anyOf.find((s: any) => s.type === 'object');
      const validate = ajv.compile(schema);
      assert.ok(validate(body), `${label}: the sample matches the document: ${ajv.errorsText(validate.errors)}`);

      for (const field of (schema.required ?? []) as string[]) {
        const { [field]: _dropped, ...without } = body;
        assert.equal(validate(without), false, `${label}: the document requires ${field}`);
        const r = await api(method, path, { params, body: without, ...(key ? { key } : {}) });
        assert.equal(r.status, 400, `${label} without ${field}: ${r.text}`);
        assert.equal(r.body.error.field, field, `${label} without ${field} names it: ${r.text}`);
      }
      if (schema.additionalProperties === false) {
        const r = await api(method, path, { params, body: { ...body, bogus_field: 1 }, ...(key ? { key } : {}) });
        assert.equal(r.status, 400, `${label} with an unknown field: ${r.text}`);
        assert.equal(r.body.error.field, 'bogus_field', r.text);
      }
      const ok = await api(method, path, { params, body, ...(key ? { key } : {}) });
      assert.ok(ok.status >= 200 && ok.status < 300, `${label}: the sample is accepted: ${ok.text}`);
    }
  });

  test('documented limits are enforced: timeout_ms ≤ 30000, the poll wait bound from config, batch size, media type, sizes', async () => {
    const tenant = 'doc-limits';
    const c = await g.createConsumer({ tenant, start: 'earliest' });
    const hook = { params: { id: c.id } };
    for (const method of ['put', 'patch']) {
      const over = await api(method, '/v1/consumers/{id}/webhook', { ...hook, body: { url: 'http://127.0.0.1:9/', timeout_ms: MAX_TIMEOUT_MS + 1 } });
      assert.equal(over.status, 400, `${method}: ${over.text}`);
      assert.equal(over.body.error.field, 'timeout_ms');
      const max = await api(method, '/v1/consumers/{id}/webhook', { ...hook, body: { url: 'http://127.0.0.1:9/', timeout_ms: MAX_TIMEOUT_MS, enabled: false } });
      assert.ok(max.status === 200 || max.status === 201, `${method} timeout_ms ${MAX_TIMEOUT_MS}: ${max.text}`);
      assert.equal(max.body.timeout_ms, MAX_TIMEOUT_MS);
    }
    assert.equal((await api('delete', '/v1/consumers/{id}/webhook', hook)).status, 200);

    // The poll query documents the configured maximum wait, and that bound is what is enforced.
    const wait = raw.paths['/v1/events'].get.parameters.find((p: any) => p.name === 'wait');
    assert.match(wait.description, new RegExp(`0 to ${MAX_WAIT_S}\\b`));
    const names = raw.paths['/v1/events'].get.parameters.map((p: any) => p.name).sort();
    assert.deepEqual(names, ['ack', 'after', 'limit', 'wait']);
    const tooLong = await api('get', '/v1/events', { query: `wait=${MAX_WAIT_S + 0.5}`, key: c.key });
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.body.error.field, 'wait');
    await g.publish({ tenant, type: 'doc.limit', data: null });
    const atMax = await api('get', '/v1/events', { query: `wait=${MAX_WAIT_S}`, key: c.key });
    assert.equal(atMax.status, 200, `wait=${MAX_WAIT_S} is allowed (answers at once: an event is there)`);
    assert.equal(atMax.body.events.length, 1);
    const limit = await api('get', '/v1/events', { query: 'wait=0&limit=1001', key: c.key });
    assert.equal(limit.status, 400);
    assert.equal(limit.body.error.field, 'limit');
    const badCursor = await api('get', '/v1/events', { query: 'wait=0&after=nope', key: c.key });
    assert.equal(badCursor.status, 400);
    assert.equal(badCursor.body.error.code, 'invalid_cursor');

    const batch = Array.from({ length: MAX_BATCH + 1 }, () => ({ tenant, type: 'doc.limit', data: null }));
    assert.equal((await api('post', '/v1/events', { body: batch })).status, 400);
    const media = await api('post', '/v1/events', { raw: '{}', headers: { 'content-type': 'text/plain' } });
    assert.equal(media.status, 415);
    const big = await api('post', '/v1/events', { body: { tenant, type: 'doc.limit', data: 'x'.repeat(2048) } });
    assert.equal(big.status, 413, 'data over maxEventBytes');
    const notJson = await api('post', '/v1/events', { raw: '{"tenant":', headers: { 'content-type': 'application/json' } });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.error.code, 'invalid_json');
  });

  test('every documented operation, called for real, answers a documented status with a body matching its schema', async () => {
    const tenant = 'doc-tour';
    assert.equal((await api('get', '/healthz', { key: null })).status, 200);
    assert.equal((await api('get', '/readyz', { key: null })).status, 200);
    assert.equal((await api('get', '/openapi.json', { key: null })).status, 200);
    assert.equal((await api('get', '/metrics')).status, 200);

    const one = await api('post', '/v1/events', { body: { tenant, type: 'doc.one', id: 'doc-1', data: { a: 1 } } });
    assert.equal(one.status, 201);
    assert.equal((await api('post', '/v1/events', { body: { tenant, type: 'doc.one', id: 'doc-1', data: { a: 2 } } })).status, 200);
    const batch = await api('post', '/v1/events', { body: [{ tenant, type: 'doc.two', data: null }, { tenant, type: 'other', data: [1] }] });
    assert.equal(batch.status, 201);

    const created = await api('post', '/v1/consumers', { body: { tenant, name: 'tour', start: 'earliest', filter: { types: ['doc.*'] } } });
    assert.equal(created.status, 201);
    const id: string = created.body.id;
    let key: string = created.body.key;
    assert.equal((await api('post', '/v1/consumers', { body: { tenant, name: 'tour' } })).status, 409, 'name taken');
    assert.equal((await api('get', '/v1/consumers', { query: `tenant=${tenant}` })).status, 200);
    assert.equal((await api('get', '/v1/consumers', { query: 'limit=0' })).status, 400);
    assert.equal((await api('get', '/v1/consumers/{id}', { params: { id } })).status, 200);
    assert.equal((await api('patch', '/v1/consumers/{id}', { params: { id }, body: { name: 'tour-2', filter: { types: ['doc.**'] } } })).status, 200);
    const badFilter = await api('patch', '/v1/consumers/{id}', { params: { id }, body: { filter: { types: ['doc.*'], nope: 1 } } });
    assert.equal(badFilter.status, 400);
    assert.equal(badFilter.body.error.code, 'invalid_filter');

    const polled = await api('get', '/v1/events', { query: 'wait=0', key });
    assert.equal(polled.status, 200);
    assert.equal(polled.body.events.length, 2);
    assert.equal((await api('post', '/v1/ack', { body: { cursor: polled.body.cursor }, key })).status, 200);
    assert.equal((await api('get', '/v1/consumer', { key })).status, 200);
    assert.equal((await api('post', '/v1/consumers/{id}/seek', { params: { id }, body: { to: 'earliest' } })).status, 200);
    const rotated = await api('post', '/v1/consumers/{id}/key', { params: { id } });
    assert.equal(rotated.status, 200);
    assert.equal((await api('get', '/v1/consumer', { key })).status, 401, 'the old key stopped working');
    key = rotated.body.key;

    const url = `http://127.0.0.1:${await unusedPort()}/`;
    assert.equal((await api('put', '/v1/consumers/{id}/webhook', { params: { id }, body: { url, enabled: false } })).status, 201);
    assert.equal((await api('put', '/v1/consumers/{id}/webhook', { params: { id }, body: { url, enabled: false, method: 'PUT' } })).status, 200);
    assert.equal((await api('patch', '/v1/consumers/{id}/webhook', { params: { id }, body: { enabled: true } })).status, 200);
    const pushMode = await api('get', '/v1/events', { query: 'wait=0', key });
    assert.equal(pushMode.status, 409);
    assert.equal(pushMode.body.error.code, 'push_mode');
    assert.equal((await api('post', '/v1/ack', { body: { cursor: polled.body.cursor }, key })).status, 409);
    assert.equal((await api('get', '/v1/consumers/{id}/webhook', { params: { id } })).status, 200);
    assert.equal((await api('get', '/v1/consumers/{id}/deliveries', { params: { id } })).status, 200);
    assert.equal((await api('get', '/v1/consumers/{id}/deliveries', { params: { id }, query: 'limit=abc' })).status, 400);

    // Preview and test: answers of every kind match their documented schemas.
    const rx = await startReceiver(() => ({ status: 202, headers: { 'x-receipt': 'r-1' }, body: 'accepted' }));
    try {
      const shaped = { url: `${rx.url}t/{{data.a}}`, method: 'PUT', body: '{"a": {{data.a}}}', auth: { type: 'bearer', token: 'doc-token' } };
      const preview = await api('post', '/v1/consumers/{id}/webhook/preview', { params: { id }, body: { cursor: one.body.cursor, webhook: shaped } });
      assert.equal(preview.status, 200);
      assert.equal(preview.body.event.cursor, one.body.cursor);
      assert.deepEqual([preview.body.request.method, preview.body.request.url, preview.body.request.body], ['PUT', `${rx.url}t/1`, '{"a": 1}']);
      assert.equal(preview.body.request.headers.authorization, 'Bearer •••');
      assert.doesNotMatch(preview.text, /doc-token/, 'never the token');
      const failing = await api('post', '/v1/consumers/{id}/webhook/preview', { params: { id }, body: { webhook: { ...shaped, missing: 'fail' }, event: { data: {} } } });
      assert.equal(failing.status, 200);
      assert.equal(failing.body.request, null);
      assert.match(failing.body.error, /data\.a/);
      const sent = await api('post', '/v1/consumers/{id}/webhook/test', { params: { id }, body: { cursor: one.body.cursor, webhook: shaped } });
      assert.equal(sent.status, 200);
      assert.deepEqual([sent.body.ok, sent.body.status, sent.body.response.body, sent.body.response.headers['x-receipt']], [true, 202, 'accepted', 'r-1']);
      assert.doesNotMatch(sent.text, /doc-token/, 'never the token');
      assert.equal(rx.requests[0]!.headers.authorization, 'Bearer doc-token', 'the receiver got the real token');
      const refused = await api('post', '/v1/consumers/{id}/webhook/test', { params: { id }, body: { webhook: { url } } });
      assert.equal(refused.status, 200);
      assert.deepEqual([refused.body.ok, refused.body.error, refused.body.response], [false, 'refused', null]);
      const noEvent = await api('post', '/v1/consumers/{id}/webhook/preview', { params: { id }, body: { cursor: 't0000000000999999' } });
      assert.equal(noEvent.status, 404, noEvent.text);
    } finally {
      await rx.close();
    }
    assert.equal((await api('delete', '/v1/consumers/{id}/webhook', { params: { id } })).status, 200);
    for (const [method, path] of [['get', '/v1/consumers/{id}/webhook'], ['patch', '/v1/consumers/{id}/webhook'], ['delete', '/v1/consumers/{id}/webhook']] as const) {
      const r = await api(method, path, { params: { id }, ...(method === 'patch' ? { body: { enabled: true } } : {}) });
      assert.equal(r.status, 404, `${method} ${path} without a webhook`);
    }

    const browsed = await api('get', '/v1/tenants/{tenant}/events', { params: { tenant }, query: 'type=doc.*&limit=1' });
    assert.equal(browsed.status, 200);
    assert.equal(browsed.body.events.length, 1);
    assert.equal((await api('get', '/v1/tenants/{tenant}/events', { params: { tenant }, query: `before=${browsed.body.next}` })).status, 200);
    assert.equal((await api('get', '/v1/tenants/{tenant}/events', { params: { tenant }, query: 'limit=0' })).status, 400);
    assert.equal((await api('get', '/v1/ops/series')).status, 200);

    assert.equal((await api('get', '/v1/bridge')).status, 200);
    assert.equal((await api('put', '/v1/bridge', { body: { enabled: false } })).status, 200);
    assert.equal((await api('put', '/v1/bridge', { body: { enabled: true } })).status, 200);

    // Unknown ids: 404 on every operation that takes one.
    const ghost = { id: 'con_doesnotexist00', tenant: 'doc-never-published' };
    const bodies: Record<string, unknown> = {
      'patch /v1/consumers/{id}': { name: 'ghost' },
      'post /v1/consumers/{id}/seek': { to: 'latest' },
      'put /v1/consumers/{id}/webhook': { url, enabled: false },
      'patch /v1/consumers/{id}/webhook': { enabled: false },
      'post /v1/consumers/{id}/webhook/preview': {},
      'post /v1/consumers/{id}/webhook/test': {},
    };
    for (const { key: opKey, method, path, op } of documentedOps(raw)) {
      if (!op.parameters?.some((p: any) => p.in === 'path')) continue;
      const r = await api(method, path, { params: ghost, ...(bodies[opKey] ? { body: bodies[opKey] } : {}) });
      assert.equal(r.status, 404, `${opKey} on an unknown id: ${r.text}`);
      assert.equal(r.body.error.code, 'not_found');
    }

    assert.equal((await api('delete', '/v1/consumers/{id}', { params: { id } })).status, 204);
    assert.equal((await api('get', '/v1/consumer', { key })).status, 401, 'a deleted consumer’s key is gone');
  });

  test('every documented operation was answered 2xx by a call in this file', () => {
    const missing = documentedOps(raw)
      .map((o) => o.key)
      .filter((k) => ![...(seen.get(k) ?? [])].some((s) => s >= 200 && s < 300));
    assert.deepEqual(missing, []);
  });
});

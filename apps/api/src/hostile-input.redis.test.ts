import { gzipSync } from 'node:zlib';
import { createMoaQueues } from '@moa-queue/contract';
import { builtInConfig } from '@moa-queue/moa';
import { uniquePrefix } from '@moa-queue/test-support';
import type { Express } from 'express';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createApp } from './app.js';

const SMALL_LIMIT = 2048;

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const config = builtInConfig();
const queues = createMoaQueues({
  connection: redis,
  prefix: uniquePrefix('api-hostile'),
  providers: Object.keys(config.providers),
});
const logger = pino({ level: 'silent' });

/** Each hostile request goes to one of these apps. */
const apps: Record<'small' | 'secret' | 'big', Express> = {
  /** A small body limit and no webhook secret. */
  small: createApp({ queues, redis, config, logger, maxBodyBytes: SMALL_LIMIT }),
  /** The same limit with webhooks enabled. */
  secret: createApp({
    queues,
    redis,
    config,
    logger,
    maxBodyBytes: SMALL_LIMIT,
    webhookSecret: 'whsec_aG9zdGlsZQ==',
  }),
  /** A large limit, so huge bodies reach the parser and the schema. */
  big: createApp({ queues, redis, config, logger, maxBodyBytes: 64 * 1024 * 1024 }),
};

afterAll(async () => {
  await queues.close();
  await redis.quit();
});

const user = { role: 'user', content: 'hello' };

type Agent = ReturnType<typeof request>;

interface HostileCase {
  name: string;
  app?: keyof typeof apps;
  /** A JSON value or a raw string, sent as `application/json` to `POST /v1/jobs`. */
  body?: unknown;
  /** Raw JSON text, sent as is. */
  raw?: string;
  /** A custom request, instead of `body`/`raw`. */
  send?: (agent: Agent) => request.Test;
  status: number;
  /** The expected `param`; `undefined` skips the check. */
  param?: string | null;
  code?: string;
}

const postRaw = (agent: Agent, text: string) =>
  agent.post('/v1/jobs').set('content-type', 'application/json').send(text);
const postBytes = (agent: Agent, bytes: Buffer, headers: Record<string, string>) =>
  agent
    .post('/v1/jobs')
    .set(headers)
    .serialize((data: unknown) => data as string)
    .send(bytes as unknown as string);

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const gzipBomb = gzipSync(JSON.stringify({ messages: [user], pad: ' '.repeat(1_000_000) }));

const cases: HostileCase[] = [
  // Not JSON, or not an object.
  { name: 'malformed JSON', raw: '{"messages": [', status: 400, param: null, code: 'invalid_json' },
  {
    name: 'JSON with a trailing comma',
    raw: '{"messages": [],}',
    status: 400,
    param: null,
    code: 'invalid_json',
  },
  { name: 'whitespace-only JSON body', raw: '   ', status: 400, param: null },
  { name: 'body is an array', raw: '[]', status: 400, param: null },
  { name: 'body is a string', raw: '"hello"', status: 400, param: null },
  { name: 'body is a number', raw: '42', status: 400, param: null },
  { name: 'body is null', raw: 'null', status: 400, param: null },
  { name: 'no body at all', send: (agent) => agent.post('/v1/jobs'), status: 400, param: null },
  // messages
  { name: 'missing messages', body: {}, status: 400, param: 'messages' },
  { name: 'messages is a string', body: { messages: 'hello' }, status: 400, param: 'messages' },
  { name: 'messages is an object', body: { messages: { 0: user } }, status: 400, param: 'messages' },
  { name: 'empty messages', body: { messages: [] }, status: 400, param: 'messages' },
  { name: 'message is null', body: { messages: [null] }, status: 400, param: 'messages[0]' },
  { name: 'message is a string', body: { messages: ['hello'] }, status: 400, param: 'messages[0]' },
  {
    name: 'message missing role',
    body: { messages: [{ content: 'hello' }] },
    status: 400,
    param: 'messages[0].role',
  },
  {
    name: "unknown role 'robot'",
    body: { messages: [{ role: 'robot', content: 'x' }] },
    status: 400,
    param: 'messages[0].role',
  },
  {
    name: 'role of a later message',
    body: { messages: [user, { role: 'tool', content: 'x' }] },
    status: 400,
    param: 'messages[1].role',
  },
  {
    name: 'content missing',
    body: { messages: [{ role: 'user' }] },
    status: 400,
    param: 'messages[0].content',
  },
  {
    name: 'content is a number',
    body: { messages: [{ role: 'user', content: 42 }] },
    status: 400,
    param: 'messages[0].content',
  },
  {
    name: 'content is null',
    body: { messages: [{ role: 'user', content: null }] },
    status: 400,
    param: 'messages[0].content',
  },
  {
    name: 'content is an empty array',
    body: { messages: [{ role: 'user', content: [] }] },
    status: 400,
    param: 'messages[0].content',
  },
  {
    name: 'content part of a non-text type',
    body: {
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }],
    },
    status: 400,
    param: 'messages[0].content',
  },
  {
    name: 'text part whose text is not a string',
    body: { messages: [{ role: 'user', content: [{ type: 'text', text: { evil: true } }] }] },
    status: 400,
    param: 'messages[0].content',
  },
  {
    name: 'name over 64 characters',
    body: { messages: [{ ...user, name: 'n'.repeat(65) }] },
    status: 400,
    param: 'messages[0].name',
  },
  {
    name: 'no user message',
    body: { messages: [{ role: 'system', content: 'be nice' }] },
    status: 400,
    param: 'messages',
  },
  {
    name: 'only whitespace user content',
    body: { messages: [{ role: 'user', content: ' \n\t ' }] },
    status: 400,
    param: 'messages',
  },
  {
    name: 'empty user content',
    body: { messages: [{ role: 'user', content: '' }] },
    status: 400,
    param: 'messages',
  },
  {
    name: 'content over 1,000,000 characters',
    app: 'big',
    body: { messages: [{ role: 'user', content: 'x'.repeat(1_000_001) }] },
    status: 400,
    param: 'messages[0].content',
  },
  {
    name: '50,000 messages (over 2048)',
    app: 'big',
    body: { messages: Array.from({ length: 50_000 }, () => user) },
    status: 400,
    param: 'messages',
  },
  // Size, content type and encoding.
  {
    name: 'body over maxBodyBytes',
    body: { messages: [{ role: 'user', content: 'x'.repeat(SMALL_LIMIT * 2) }] },
    status: 413,
    param: null,
    code: 'request_too_large',
  },
  {
    name: 'gzip body that inflates over maxBodyBytes',
    send: (agent) =>
      postBytes(agent, gzipBomb, { 'content-type': 'application/json', 'content-encoding': 'gzip' }),
    status: 413,
    param: null,
  },
  {
    name: 'corrupt gzip body',
    send: (agent) =>
      postBytes(agent, Buffer.from(JSON.stringify({ messages: [user] })), {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      }),
    status: 400,
    param: null,
  },
  {
    name: 'unknown content encoding',
    send: (agent) => postRaw(agent, '{}').set('content-encoding', 'x-unknown'),
    status: 415,
    param: null,
  },
  {
    name: 'unsupported charset',
    send: (agent) =>
      agent.post('/v1/jobs').set('content-type', 'application/json; charset=latin1').send('{}'),
    status: 415,
    param: null,
  },
  {
    name: 'content type text/plain',
    send: (agent) =>
      agent
        .post('/v1/jobs')
        .set('content-type', 'text/plain')
        .send(JSON.stringify({ messages: [user] })),
    status: 415,
    param: null,
    code: 'unsupported_media_type',
  },
  {
    name: 'form-urlencoded',
    send: (agent) => agent.post('/v1/jobs').type('form').send('messages=hello'),
    status: 415,
    param: null,
    code: 'unsupported_media_type',
  },
  {
    name: 'content type application/xml',
    send: (agent) => agent.post('/v1/jobs').set('content-type', 'application/xml').send('<messages/>'),
    status: 415,
    param: null,
  },
  // metadata
  {
    name: 'metadata with 17 keys',
    body: {
      messages: [user],
      metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`key${i}`, 'v'])),
    },
    status: 400,
    param: 'metadata',
  },
  {
    name: 'metadata key of 65 characters',
    body: { messages: [user], metadata: { ['k'.repeat(65)]: 'v' } },
    status: 400,
    param: 'metadata',
  },
  {
    name: 'metadata value of 513 characters',
    body: { messages: [user], metadata: { note: 'v'.repeat(513) } },
    status: 400,
    param: 'metadata.note',
  },
  {
    name: 'metadata value a number',
    body: { messages: [user], metadata: { count: 3 } },
    status: 400,
    param: 'metadata.count',
  },
  {
    name: 'metadata value an object',
    body: { messages: [user], metadata: { nested: { a: 'b' } } },
    status: 400,
    param: 'metadata.nested',
  },
  {
    name: 'metadata an array',
    body: { messages: [user], metadata: ['a', 'b'] },
    status: 400,
    param: 'metadata',
  },
  { name: 'metadata a string', body: { messages: [user], metadata: 'tag' }, status: 400, param: 'metadata' },
  { name: 'metadata null', body: { messages: [user], metadata: null }, status: 400, param: 'metadata' },
  // webhook
  {
    name: 'webhook without a secret configured',
    body: { messages: [user], webhook: { url: 'https://hooks.example.com/x' } },
    status: 400,
    param: 'webhook',
    code: 'webhooks_disabled',
  },
  {
    name: "webhook url 'ftp://x'",
    app: 'secret',
    body: { messages: [user], webhook: { url: 'ftp://x' } },
    status: 400,
    param: 'webhook.url',
  },
  {
    name: 'webhook url javascript:',
    app: 'secret',
    body: { messages: [user], webhook: { url: 'javascript:alert(1)' } },
    status: 400,
    param: 'webhook.url',
  },
  {
    name: 'webhook url not a URL',
    app: 'secret',
    body: { messages: [user], webhook: { url: 'not a url' } },
    status: 400,
    param: 'webhook.url',
  },
  {
    name: 'webhook url a number',
    app: 'secret',
    body: { messages: [user], webhook: { url: 42 } },
    status: 400,
    param: 'webhook.url',
  },
  {
    name: 'webhook url missing',
    app: 'secret',
    body: { messages: [user], webhook: {} },
    status: 400,
    param: 'webhook.url',
  },
  {
    name: 'webhook extra key',
    app: 'secret',
    body: { messages: [user], webhook: { url: 'https://hooks.example.com/x', secret: 'mine' } },
    status: 400,
    param: 'webhook.secret',
  },
  {
    name: 'webhook a string',
    app: 'secret',
    body: { messages: [user], webhook: 'https://hooks.example.com/x' },
    status: 400,
    param: 'webhook',
  },
  // Other top-level fields.
  {
    // `temperature` is a request option now (for the aggregator): a misspelling of it is unknown.
    name: 'unknown top-level key',
    body: { messages: [user], temperatur: 2 },
    status: 400,
    param: 'temperatur',
  },
  {
    name: 'top-level __proto__ key',
    raw: '{"messages":[{"role":"user","content":"x"}],"__proto__":{"polluted":true}}',
    status: 400,
    param: '__proto__',
  },
  { name: 'preset a number', body: { messages: [user], preset: 7 }, status: 400, param: 'preset' },
  { name: 'preset empty string', body: { messages: [user], preset: '' }, status: 400, param: 'preset' },
  {
    name: 'preset of 129 characters',
    body: { messages: [user], preset: 'p'.repeat(129) },
    status: 400,
    param: 'preset',
  },
  {
    name: 'preset with path characters',
    body: { messages: [user], preset: '../../etc/passwd' },
    status: 400,
    param: 'preset',
  },
  // Deep nesting.
  { name: '10,000 levels of [ as the body', app: 'big', raw: nested(10_000), status: 400, param: null },
  {
    name: '10,000 unclosed [',
    app: 'big',
    raw: '['.repeat(10_000),
    status: 400,
    param: null,
    code: 'invalid_json',
  },
  {
    name: '10,000 levels of [ as a message',
    app: 'big',
    raw: `{"messages":[${nested(10_000)}]}`,
    status: 400,
    param: 'messages[0]',
  },
  {
    name: '10,000 levels of objects in metadata',
    app: 'big',
    raw: `{"messages":[{"role":"user","content":"x"}],"metadata":{"k":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}}`,
    status: 400,
    param: 'metadata.k',
  },
  // Ids.
  { name: 'path traversal id', send: (agent) => agent.get('/v1/jobs/..%2F..%2Fetc'), status: 404 },
  {
    name: 'path traversal id on DELETE',
    send: (agent) => agent.delete('/v1/jobs/..%2F..%2Fetc%2Fpasswd'),
    status: 404,
  },
  { name: 'very long id', send: (agent) => agent.get(`/v1/jobs/job_${'a'.repeat(5000)}`), status: 404 },
  { name: 'id with a NUL byte', send: (agent) => agent.get('/v1/jobs/job_abc%00def'), status: 404 },
  { name: 'id looking like a Redis key', send: (agent) => agent.get('/v1/jobs/job_x%3Aactive'), status: 404 },
  {
    name: 'malformed percent-encoding in the id',
    send: (agent) => agent.get('/v1/jobs/%E0%A4%A'),
    status: 400,
    param: null,
  },
  {
    name: 'DELETE an unknown job',
    send: (agent) => agent.delete('/v1/jobs/job_unknown000000000000000'),
    status: 404,
  },
];

describe('hostile input to the API', () => {
  it('has at least 30 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(gzipBomb.length).toBeLessThan(SMALL_LIMIT);
  });

  it.each(cases.map((hostile) => [hostile.name, hostile] as const))('%s', async (_name, hostile) => {
    const agent = request(apps[hostile.app ?? 'small']);
    const response = await (hostile.send
      ? hostile.send(agent)
      : hostile.raw !== undefined
        ? postRaw(agent, hostile.raw)
        : agent.post('/v1/jobs').send(hostile.body as object));

    expect(response.status).not.toBe(500);
    expect(response.status).toBe(hostile.status);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(response.body)).toEqual(['error']);
    const error = response.body.error;
    expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(typeof error.message).toBe('string');
    expect(error.message.length).toBeGreaterThan(0);
    expect(error.type).toBe('invalid_request_error');
    expect(error.param === null || typeof error.param === 'string').toBe(true);
    expect(error.code === null || typeof error.code === 'string').toBe(true);
    if (hostile.param !== undefined) expect(error.param).toBe(hostile.param);
    if (hostile.code !== undefined) expect(error.code).toBe(hostile.code);
  });

  it('still accepts a well-formed gzip body', async () => {
    const body = gzipSync(JSON.stringify({ messages: [user] }));
    const response = await postBytes(request(apps.small), body, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(response.status).toBe(202);
    expect(response.body.status).toBe('queued');
  });

  it('leaves every app answering /healthz afterwards', async () => {
    for (const app of Object.values(apps)) {
      const response = await request(app).get('/healthz');
      expect(response.status).toBe(200);
    }
  });
});

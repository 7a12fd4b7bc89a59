import { createMoaQueues } from '@moa-queue/contract';
import { builtInConfig } from '@moa-queue/moa';
import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createApp } from './app.js';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const config = builtInConfig();
const queues = createMoaQueues({
  connection: redis,
  prefix: uniquePrefix('api-hostile-routes'),
  providers: Object.keys(config.providers),
});
const app = createApp({ queues, redis, config, logger: pino({ level: 'silent' }), maxBodyBytes: 4096 });

afterAll(async () => {
  await queues.close();
  await redis.quit();
});

const messages = [{ role: 'user', content: 'hi' }];
const chat = (body: unknown) =>
  request(app)
    .post('/v1/chat/completions')
    .send(body as object);

const responses = (body: unknown, path = '/v1/responses') =>
  request(app)
    .post(path)
    .send(body as object);

interface RouteCase {
  name: string;
  send: () => request.Test;
  status: number;
  param?: string | null;
  code?: string;
}

/** Hostile requests to every route besides POST /v1/jobs (covered in hostile-input.redis.test.ts). */
const cases: RouteCase[] = [
  {
    name: 'chat: malformed JSON',
    send: () =>
      request(app).post('/v1/chat/completions').set('content-type', 'application/json').send('{"model":'),
    status: 400,
    code: 'invalid_json',
  },
  { name: 'chat: no model', send: () => chat({ messages }), status: 400, param: 'model' },
  { name: 'chat: model a number', send: () => chat({ model: 7, messages }), status: 400, param: 'model' },
  {
    name: 'chat: unknown model',
    send: () => chat({ model: 'gpt-5', messages }),
    status: 404,
    param: 'model',
    code: 'model_not_found',
  },
  {
    name: 'chat: model "__proto__"',
    send: () => chat({ model: '__proto__', messages }),
    status: 404,
    code: 'model_not_found',
  },
  { name: 'chat: no messages', send: () => chat({ model: 'moa' }), status: 400, param: 'messages' },
  {
    name: 'chat: unknown role',
    send: () => chat({ model: 'moa', messages: [{ role: 'robot', content: 'x' }] }),
    status: 400,
    param: 'messages[0].role',
  },
  {
    name: 'chat: stream not a boolean',
    send: () => chat({ model: 'moa', messages, stream: 'yes' }),
    status: 400,
    param: 'stream',
  },
  {
    name: 'chat: stream_options a string',
    send: () => chat({ model: 'moa', messages, stream_options: 'x' }),
    status: 400,
    param: 'stream_options',
  },
  {
    name: 'chat: negative max_tokens',
    send: () => chat({ model: 'moa', messages, max_tokens: -1 }),
    status: 400,
    param: 'max_tokens',
  },
  {
    name: 'chat: fractional max_tokens',
    send: () => chat({ model: 'moa', messages, max_tokens: 1.5 }),
    status: 400,
    param: 'max_tokens',
  },
  { name: 'chat: n = 2', send: () => chat({ model: 'moa', messages, n: 2 }), status: 400, param: 'n' },
  {
    name: 'chat: tools',
    send: () => chat({ model: 'moa', messages, tools: [{ type: 'function' }] }),
    status: 400,
    param: 'tools',
  },
  {
    name: 'chat: metadata with a number',
    send: () => chat({ model: 'moa', messages, metadata: { a: 1 } }),
    status: 400,
  },
  {
    name: 'chat: text/plain',
    send: () => request(app).post('/v1/chat/completions').set('content-type', 'text/plain').send('hello'),
    status: 415,
  },
  {
    name: 'chat: body over the limit',
    send: () => chat({ model: 'moa', messages: [{ role: 'user', content: 'x'.repeat(10_000) }] }),
    status: 413,
  },
  { name: 'chat: GET', send: () => request(app).get('/v1/chat/completions'), status: 405 },
  { name: 'responses: GET', send: () => request(app).get('/v1/responses'), status: 405 },
  {
    name: 'responses: trailing slash',
    send: () => responses({ model: 'moa', input: 'hi' }, '/v1/responses/'),
    status: 404,
  },
  { name: 'responses: no input', send: () => responses({ model: 'moa' }), status: 400, param: 'input' },
  {
    name: 'responses: blank input',
    send: () => responses({ model: 'moa', input: '  ' }),
    status: 400,
    param: 'input',
  },
  {
    name: 'responses: unknown model',
    send: () => responses({ model: 'nope', input: 'hi' }),
    status: 404,
    code: 'model_not_found',
  },
  {
    name: 'responses: an image part',
    send: () =>
      responses({
        model: 'moa',
        input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }],
      }),
    status: 400,
    param: 'input[0].content[0].type',
    code: 'unsupported_parameter',
  },
  {
    name: 'responses: a tool output item',
    send: () =>
      responses({
        model: 'moa',
        input: [
          { role: 'user', content: 'hi' },
          { type: 'function_call_output', call_id: 'c', output: 'x' },
        ],
      }),
    status: 400,
    param: 'input[1].type',
    code: 'unsupported_parameter',
  },
  {
    name: "responses: json_schema in chat's nested shape",
    send: () =>
      responses({
        model: 'moa',
        input: 'hi',
        text: { format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } },
      }),
    status: 400,
    param: 'text.format.name',
  },
  {
    name: 'responses: max_output_tokens 0',
    send: () => responses({ model: 'moa', input: 'hi', max_output_tokens: 0 }),
    status: 400,
    param: 'max_output_tokens',
  },
  {
    name: 'responses: store true',
    send: () => responses({ model: 'moa', input: 'hi', store: true }),
    status: 400,
    param: 'store',
    code: 'unsupported_parameter',
  },
  { name: 'events: unknown job', send: () => request(app).get('/v1/jobs/job_nothere/events'), status: 404 },
  { name: 'events: malformed id', send: () => request(app).get('/v1/jobs/%2E%2E/events'), status: 404 },
  {
    name: 'models: unknown',
    send: () => request(app).get('/v1/models/nope'),
    status: 404,
    code: 'model_not_found',
  },
  { name: 'models: DELETE', send: () => request(app).delete('/v1/models'), status: 405 },
  {
    name: 'files: JSON instead of multipart',
    send: () => request(app).post('/v1/files').send({ purpose: 'batch' }),
    status: 415,
  },
  {
    name: 'files: multipart without a file',
    send: () => request(app).post('/v1/files').field('purpose', 'batch'),
    status: 400,
  },
  {
    name: 'files: wrong purpose',
    send: () =>
      request(app)
        .post('/v1/files')
        .field('purpose', 'vision')
        .attach('file', Buffer.from('{}\n'), 'in.jsonl'),
    status: 400,
    param: 'purpose',
  },
  { name: 'files: unknown id', send: () => request(app).get('/v1/files/file-nothere'), status: 404 },
  {
    name: 'files: unknown content',
    send: () => request(app).get('/v1/files/file-nothere/content'),
    status: 404,
  },
  {
    name: 'files: traversal id',
    send: () => request(app).get('/v1/files/..%2F..%2Fetc%2Fpasswd'),
    status: 404,
  },
  {
    name: 'batches: empty body',
    send: () => request(app).post('/v1/batches').send({}),
    status: 400,
    param: 'input_file_id',
  },
  {
    name: 'batches: unknown input file',
    send: () =>
      request(app)
        .post('/v1/batches')
        .send({ input_file_id: 'file-nothere', endpoint: '/v1/chat/completions', completion_window: '24h' }),
    status: 404,
  },
  {
    name: 'batches: wrong endpoint',
    send: () =>
      request(app)
        .post('/v1/batches')
        .send({ input_file_id: 'file-x', endpoint: '/v1/embeddings', completion_window: '24h' }),
    status: 400,
    param: 'endpoint',
  },
  {
    name: 'batches: wrong window',
    send: () =>
      request(app)
        .post('/v1/batches')
        .send({ input_file_id: 'file-x', endpoint: '/v1/chat/completions', completion_window: '48h' }),
    status: 400,
    param: 'completion_window',
  },
  {
    name: 'batches: 17 metadata keys',
    send: () =>
      request(app)
        .post('/v1/batches')
        .send({
          input_file_id: 'file-x',
          endpoint: '/v1/chat/completions',
          completion_window: '24h',
          metadata: Object.fromEntries(Array.from({ length: 17 }, (_, index) => [`k${index}`, 'v'])),
        }),
    status: 400,
    param: 'metadata',
  },
  {
    name: 'batches: limit not a number',
    send: () => request(app).get('/v1/batches?limit=abc'),
    status: 400,
    param: 'limit',
  },
  {
    name: 'batches: limit too big',
    send: () => request(app).get('/v1/batches?limit=100000'),
    status: 400,
    param: 'limit',
  },
  { name: 'batches: unknown id', send: () => request(app).get('/v1/batches/batch_nothere'), status: 404 },
  {
    name: 'batches: cancel unknown',
    send: () => request(app).post('/v1/batches/batch_nothere/cancel'),
    status: 404,
  },
  { name: 'batches: DELETE', send: () => request(app).delete('/v1/batches/batch_x'), status: 405 },
];

describe('hostile requests on every other route', () => {
  it.each(cases.map((entry) => [entry.name, entry] as const))('%s', async (_name, entry) => {
    const response = await entry.send();
    expect(response.status).toBe(entry.status);
    expect(Object.keys(response.body)).toEqual(['error']);
    expect(Object.keys(response.body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    if (entry.param !== undefined) expect(response.body.error.param).toBe(entry.param);
    if (entry.code !== undefined) expect(response.body.error.code).toBe(entry.code);
  });

  it('is still healthy afterwards', async () => {
    expect((await request(app).get('/healthz')).status).toBe(200);
  });
});

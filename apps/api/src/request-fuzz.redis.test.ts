import { createMoaQueues } from '@moa-queue/contract';
import { builtInConfig } from '@moa-queue/moa';
import { uniquePrefix } from '@moa-queue/test-support';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createApp } from './app.js';

const redis = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });
const config = builtInConfig();
const queues = createMoaQueues({
  connection: redis,
  prefix: uniquePrefix('api-fuzz'),
  providers: ['together'],
});
const app = createApp({
  queues,
  redis,
  config,
  logger: pino({ level: 'silent' }),
  maxBodyBytes: 64 * 1024,
  webhookSecret: `whsec_${Buffer.from('fuzz-secret-fuzz-secret').toString('base64')}`,
});

afterAll(async () => {
  await queues.close();
  await redis.quit();
});

/** Values shaped like a job request, wrong in every way the arbitraries can find. */
const message = fc.record(
  {
    role: fc.oneof(fc.constantFrom('system', 'user', 'assistant', 'developer', 'tool', ''), fc.anything()),
    content: fc.oneof(
      fc.string(),
      fc.array(fc.record({ type: fc.constantFrom('text', 'image_url'), text: fc.anything() })),
      fc.anything(),
    ),
  },
  { requiredKeys: [] },
);
const body = fc.oneof(
  fc.record(
    {
      preset: fc.oneof(fc.constantFrom('moa', 'moa-lite', 'self-moa', 'nope', ''), fc.anything()),
      messages: fc.oneof(fc.array(message, { maxLength: 5 }), fc.anything()),
      metadata: fc.oneof(
        fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.anything()), { maxKeys: 20 }),
        fc.anything(),
      ),
      webhook: fc.oneof(fc.record({ url: fc.oneof(fc.webUrl(), fc.string()) }), fc.anything()),
    },
    { requiredKeys: [] },
  ),
  fc.jsonValue(),
);

function isErrorObject(value: unknown): boolean {
  if (!value || typeof value !== 'object' || Object.keys(value).join() !== 'error') return false;
  const error = (value as { error: Record<string, unknown> }).error;
  return (
    typeof error.message === 'string' &&
    typeof error.type === 'string' &&
    (error.param === null || typeof error.param === 'string') &&
    (error.code === null || typeof error.code === 'string')
  );
}

describe('POST /v1/jobs under property-based fuzzing', () => {
  it('answers 202 with a job or a 4xx OpenAI error object, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(body, async (value) => {
        const response = await request(app)
          .post('/v1/jobs')
          .set('content-type', 'application/json')
          .send(JSON.stringify(value));
        expect(response.status).toBeLessThan(500);
        if (response.status === 202) {
          expect(response.body).toMatchObject({ object: 'moa.job', status: 'queued' });
        } else {
          expect(response.status).toBeGreaterThanOrEqual(400);
          expect(isErrorObject(response.body)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
    expect((await request(app).get('/healthz')).status).toBe(200);
  });
});

import request from 'supertest';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createTestApi } from './test-api.js';
import { KEYS } from './keys.js';

const api = createTestApi('security-small', inject('redisUrl'));
const { app } = api;
const auth = { authorization: `Bearer ${KEYS.alpha}` };

afterAll(() => api.close());

describe('user strings never reach an object prototype', () => {
  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])(
    'GET /v1/models/%s is a 404 model_not_found',
    async (name) => {
      const response = await request(app).get(`/v1/models/${name}`).set(auth);
      expect(response.status).toBe(404);
      expect(response.body.error).toMatchObject({ code: 'model_not_found', param: 'model' });
    },
  );

  it.each(['constructor', '__proto__', 'toString'])(
    'a chat completion for model %s is a 404',
    async (model) => {
      const response = await request(app)
        .post('/v1/chat/completions')
        .set(auth)
        .send({ model, messages: [{ role: 'user', content: 'hi' }] });
      expect(response.status).toBe(404);
      expect(response.body.error.code).toBe('model_not_found');
    },
  );

  it.each(['constructor', '__proto__', 'toString'])(
    'a job for preset %s is a 400 naming preset',
    async (preset) => {
      const response = await request(app)
        .post('/v1/jobs')
        .set(auth)
        .send({ preset, messages: [{ role: 'user', content: 'hi' }] });
      expect(response.status).toBe(400);
      expect(response.body.error).toMatchObject({ param: 'preset', code: 'unknown_preset' });
    },
  );

  it.each(['__proto__', 'constructor', 'prototype'])(
    'refuses metadata key %s with a 400 naming metadata',
    async (key) => {
      // Sent as raw JSON: an own "__proto__" key, exactly as JSON.parse makes it.
      const response = await request(app)
        .post('/v1/jobs')
        .set(auth)
        .set('content-type', 'application/json')
        .send(`{"messages":[{"role":"user","content":"hi"}],"metadata":{"${key}":"x","ok":"y"}}`);
      expect(response.status).toBe(400);
      expect(response.body.error).toMatchObject({ param: 'metadata', type: 'invalid_request_error' });
      expect(response.body.error.message).toContain(key);
    },
  );

  it('keeps other metadata keys as they are', async () => {
    const response = await request(app)
      .post('/v1/jobs')
      .set(auth)
      .send({ messages: [{ role: 'user', content: 'hi' }], metadata: { proto: 'a', __constructor: 'b' } });
    expect(response.status).toBe(202);
    expect(response.body.metadata).toEqual({ proto: 'a', __constructor: 'b' });
  });
});

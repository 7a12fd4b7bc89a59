import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { freePort } from '@moa-queue/test-support';
import { ConnectionClosedError } from 'bullmq';
import express from 'express';
import { Redis, ReplyError } from 'ioredis';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from './api-error.js';
import { errorHandler } from './middleware/error-handler.js';
import { redisApiErrorOf, redisFaultOf } from './redis-errors.js';

/** Runs `command` and returns what it was rejected with. */
async function rejection(command: () => Promise<unknown>): Promise<unknown> {
  try {
    await command();
  } catch (error) {
    return error;
  }
  throw new Error('the command did not fail');
}

/** A TCP server that accepts connections and never answers: a paused Redis, as a client sees it. */
let silent: Server;
const sockets: Socket[] = [];
let silentPort: number;
beforeAll(async () => {
  silent = createServer((socket) => sockets.push(socket));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  silentPort = (silent.address() as { port: number }).port;
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  silent.close();
});

const OOM = "OOM command not allowed when used memory > 'maxmemory'.";

describe('redisFaultOf, with the errors ioredis and BullMQ really throw', () => {
  it('a command timeout (a Redis that does not answer) is unavailable', async () => {
    const client = new Redis(silentPort, '127.0.0.1', { commandTimeout: 100, lazyConnect: true });
    client.on('error', () => undefined);
    const error = await rejection(() => client.get('x'));
    client.disconnect();
    expect((error as Error).message).toBe('Command timed out');
    expect(redisFaultOf(error)).toBe('unavailable');
  });

  it("a disconnected client without an offline queue (Stream isn't writeable) is unavailable", async () => {
    const port = await freePort();
    const client = new Redis(port, '127.0.0.1', { enableOfflineQueue: false, retryStrategy: () => 50 });
    client.on('error', () => undefined);
    const error = await rejection(() => client.get('x'));
    client.disconnect();
    expect((error as Error).message).toMatch(/Stream isn't writeable/);
    expect(redisFaultOf(error)).toBe('unavailable');
  });

  it('MaxRetriesPerRequestError (connection refused while a command waits) is unavailable', async () => {
    const port = await freePort();
    const client = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    client.on('error', () => undefined);
    const error = await rejection(() => client.get('x'));
    client.disconnect();
    expect((error as Error).name).toBe('MaxRetriesPerRequestError');
    expect(redisFaultOf(error)).toBe('unavailable');
  });

  it('"Connection is closed." (a client that gave up) and BullMQ ConnectionClosedError are unavailable', async () => {
    const port = await freePort();
    const client = new Redis(port, '127.0.0.1', { retryStrategy: () => null, lazyConnect: true });
    client.on('error', () => undefined);
    await rejection(() => client.connect());
    const error = await rejection(() => client.get('x'));
    expect((error as Error).message).toBe('Connection is closed.');
    expect(redisFaultOf(error)).toBe('unavailable');
    expect(redisFaultOf(new ConnectionClosedError('Connection is closed.'))).toBe('unavailable');
  });

  it('ECONNREFUSED from a socket is unavailable', async () => {
    const port = await freePort();
    const client = new Redis(port, '127.0.0.1', { retryStrategy: () => null, lazyConnect: true });
    const [[error]] = await Promise.all([once(client, 'error'), client.connect().catch(() => undefined)]);
    expect((error as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(redisFaultOf(error)).toBe('unavailable');
  });

  it('OOM replies, direct and from inside a script, are full', () => {
    expect(redisFaultOf(new ReplyError(OOM))).toBe('full');
    const script = new ReplyError(
      `${OOM} script: 5ab432e88830d573e2fa33392ffbd4ad25a9b100, on @user_script:589.`,
    );
    expect(redisFaultOf(script)).toBe('full');
    expect(
      redisFaultOf(new ReplyError(`ERR Error running script (call to f_1): @user_script:12: -${OOM}`)),
    ).toBe('full');
  });

  it("a MULTI's EXECABORT is classified by its previous errors", () => {
    const aborted = Object.assign(
      new ReplyError('EXECABORT Transaction discarded because of previous errors.'),
      {
        previousErrors: [new ReplyError(OOM)],
      },
    );
    expect(redisFaultOf(aborted)).toBe('full');
  });

  it.each([
    "READONLY You can't write against a read only replica.",
    'LOADING Redis is loading the dataset in memory',
    'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.',
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    'CLUSTERDOWN The cluster is down',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'NOREPLICAS Not enough good replicas to write.',
    'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.',
    "ERR Error running script (call to f_0123): @user_script:5: -READONLY You can't write against a read only replica.",
    'UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)',
  ])('the reply %j is unavailable', (message) => {
    expect(redisFaultOf(new ReplyError(message))).toBe('unavailable');
    // Also when it reaches us as a plain Error carrying the reply's text.
    expect(redisFaultOf(new Error(message))).toBe('unavailable');
  });

  it('an error wrapping a Redis fault as its cause is that fault', () => {
    expect(redisFaultOf(new Error('could not add the job', { cause: new ReplyError(OOM) }))).toBe('full');
    expect(redisFaultOf(new AggregateError([new Error('x'), new Error('Command timed out')]))).toBe(
      'unavailable',
    );
  });

  it.each([
    new Error('boom'),
    new TypeError("Cannot read properties of undefined (reading 'id')"),
    new ReplyError("ERR wrong number of arguments for 'set' command"),
    new ReplyError('BUSYKEY Target key name already exists.'),
    new ReplyError('NOSCRIPT No matching script. Please use EVAL.'),
    'a string',
    undefined,
  ])('%s is not a Redis fault', (error) => {
    expect(redisFaultOf(error)).toBeUndefined();
  });
});

describe('the error handler', () => {
  const app = express();
  const thrown: { error: unknown } = { error: undefined };
  app.get('/fail', () => {
    throw thrown.error;
  });
  app.use(errorHandler(pino({ level: 'silent' })));

  it('answers a Redis fault with 503, Retry-After, x-should-retry: true and an OpenAI error object', async () => {
    thrown.error = new Error('Command timed out');
    const unavailable = await request(app).get('/fail');
    expect(unavailable.status).toBe(503);
    expect(unavailable.headers['retry-after']).toBe('2');
    expect(unavailable.headers['x-should-retry']).toBe('true');
    expect(unavailable.body).toEqual({
      error: {
        message: expect.stringMatching(/unavailable/),
        type: 'server_error',
        param: null,
        code: 'redis_unavailable',
      },
    });

    thrown.error = new ReplyError(OOM);
    const full = await request(app).get('/fail');
    expect(full.status).toBe(503);
    expect(full.headers['retry-after']).toBe('5');
    expect(full.body.error).toMatchObject({ type: 'server_error', code: 'redis_full' });
  });

  it('sets x-should-retry on every error: true for 408, 429, 5xx and idempotency_key_in_use, false for other 4xx', async () => {
    const cases: [ApiError | Error, string][] = [
      [new ApiError(400, 'bad', 'invalid_request_error', 'messages', 'invalid_value'), 'false'],
      [new ApiError(404, 'no', 'invalid_request_error', 'id', 'job_not_found'), 'false'],
      [new ApiError(409, 'other body', 'invalid_request_error', null, 'idempotency_key_reused'), 'false'],
      [new ApiError(409, 'in use', 'invalid_request_error', null, 'idempotency_key_in_use'), 'true'],
      [new ApiError(408, 'slow', 'invalid_request_error', null, 'request_timeout'), 'true'],
      [new ApiError(429, 'slow down', 'rate_limit_error', null, 'rate_limit_exceeded'), 'true'],
      [new Error('a bug'), 'true'],
    ];
    for (const [error, expected] of cases) {
      thrown.error = error;
      const response = await request(app).get('/fail');
      expect([response.status, response.headers['x-should-retry']]).toEqual([
        error instanceof ApiError ? error.status : 500,
        expected,
      ]);
    }
  });

  it('keeps an x-should-retry that the error sets itself', async () => {
    thrown.error = new ApiError(429, 'quota', 'rate_limit_error', null, 'quota_active_jobs', {
      'retry-after': '30',
      'x-should-retry': 'false',
    });
    const response = await request(app).get('/fail');
    expect(response.headers['x-should-retry']).toBe('false');
  });

  it('redisApiErrorOf gives nothing for an error that is not a Redis fault', () => {
    expect(redisApiErrorOf(new Error('boom'))).toBeUndefined();
  });
});

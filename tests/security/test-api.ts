import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMoaQueues, type MoaQueues } from '@moa-queue/contract';
import { builtInConfig } from '@moa-queue/moa';
import { uniquePrefix } from '@moa-queue/test-support';
import type { Express } from 'express';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createApp, type AppDependencies } from '../../apps/api/src/app.js';
import { KEY_OPTIONS } from './keys.js';

/** An API with the security suites' keys, on a real Redis under its own queue prefix; no workers. */
export interface TestApi {
  app: Express;
  redis: Redis;
  queues: MoaQueues;
  prefix: string;
  /** Another app on the same Redis and queues (other keys, a trusted proxy…), served on a real socket. */
  serve(options?: Partial<AppDependencies>): Promise<number>;
  close(): Promise<void>;
}

/** Creates the API; call `close()` in `afterAll`. */
export function createTestApi(name: string, redisUrl: string): TestApi {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const config = builtInConfig();
  const prefix = uniquePrefix(name);
  const queues = createMoaQueues({ connection: redis, prefix, providers: Object.keys(config.providers) });
  const build = (options: Partial<AppDependencies> = {}) =>
    createApp({ queues, redis, config, logger: pino({ level: 'silent' }), ...KEY_OPTIONS, ...options });
  const servers: Server[] = [];
  return {
    app: build(),
    redis,
    queues,
    prefix,
    async serve(options) {
      const server = build(options).listen(0, '127.0.0.1');
      servers.push(server);
      await once(server, 'listening');
      return (server.address() as AddressInfo).port;
    },
    async close() {
      for (const server of servers) server.closeAllConnections();
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
      await queues.close();
      await redis.quit();
    },
  };
}

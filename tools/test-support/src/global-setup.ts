import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import { resolveRedis, type ResolvedRedis } from './resolve-redis.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let redis: ResolvedRedis | undefined;

/** Vitest global setup: one Redis for the whole run, handed to tests as `inject('redisUrl')`. */
export async function setup(project: TestProject): Promise<void> {
  redis = await resolveRedis({ log: (line) => console.log(`[test-support] ${line}`) });
  console.log(`[test-support] Redis for tests: ${redis.description}`);
  project.provide('redisUrl', redis.url);
}

export async function teardown(): Promise<void> {
  await redis?.stop();
}

export { resolveRedis, type ResolvedRedis } from './resolve-redis.js';
export {
  startRedisServer,
  waitForRedis,
  freePort,
  type RedisServerOptions,
  type RedisServerProcess,
} from './redis-server-process.js';
export { uniquePrefix } from './unique-prefix.js';
export { spawnTsProcess, REPOSITORY_ROOT, type TsProcess } from './ts-process.js';
export { pollUntil, until } from './poll.js';

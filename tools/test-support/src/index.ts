export {
  findRedis,
  resolveRedis,
  displayRedisUrl,
  dockerEngineAnswers,
  startRedisContainer,
  realRedisProbes,
  NoRedisError,
  RedisUrlUnreachableError,
  DEFAULT_REDIS_URL,
  REDIS_IMAGE,
  NO_REDIS_REMEDY,
  type FindRedisOptions,
  type RedisProbes,
  type RedisSource,
  type ResolvedRedis,
  type StartedRedis,
} from './resolve-redis.js';
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
export { verifyWebhook, type ReceivedWebhook } from './verify-webhook.js';

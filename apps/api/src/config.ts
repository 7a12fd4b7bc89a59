import { parseEnvironment, SHARED_ENVIRONMENT } from '@moa-queue/contract';
import { loadMoaConfig, type MoaConfig } from '@moa-queue/moa';
import { z } from 'zod';
import { assertDistinctKeys, parseApiKeys, splitKeyList } from './api-keys.js';

const environmentSchema = z.object({
  ...SHARED_ENVIRONMENT,
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  MOA_API_KEYS: z.string().optional(),
  MOA_ADMIN_KEYS: z.string().optional(),
  MOA_TRUST_PROXY: z.string().optional(),
  MOA_AUTH: z.enum(['none', 'keys']).optional(),
  MOA_RATE_LIMIT_RPM: z.coerce.number().int().min(0).default(0),
  MOA_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(4 * 1024 * 1024),
  MOA_REDIS_COMMAND_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(2000),
  MOA_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(20_000).default(20_000),
  MOA_BODY_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  MOA_UPLOAD_TIMEOUT_MS: z.coerce.number().int().min(100).max(86_400_000).default(600_000),
  MOA_MAX_CONNECTIONS: z.coerce.number().int().min(1).default(10_000),
  MOA_FAILURE_REPLAY_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
});

/** Everything the API process reads from its environment, validated. */
export interface ApiConfig {
  redisUrl: string;
  port: number;
  host: string;
  queuePrefix: string;
  /** Entries of `MOA_API_KEYS` (`key` or `name:key`), checked at load. */
  apiKeys: string[];
  /** Entries of `MOA_ADMIN_KEYS`, same syntax. */
  adminKeys: string[];
  /** Express `trust proxy`, from `MOA_TRUST_PROXY`. */
  trustProxy: boolean | number | string;
  allowUnauthenticated: boolean;
  rateLimitRpm: number;
  maxBodyBytes: number;
  webhookSecret: string | undefined;
  /** Longest wait for one Redis reply before the request answers 503 (`MOA_REDIS_COMMAND_TIMEOUT_MS`). */
  redisCommandTimeoutMs: number;
  /** A request's headers must arrive within this long (`MOA_HEADERS_TIMEOUT_MS`, at most 20 s). */
  headersTimeoutMs: number;
  /** Its body within this long of its headers, uploads excepted (`MOA_BODY_TIMEOUT_MS`). */
  bodyTimeoutMs: number;
  /** A file upload's body (`POST /v1/files`) within this long (`MOA_UPLOAD_TIMEOUT_MS`). */
  uploadTimeoutMs: number;
  /** Open connections per API process (`MOA_MAX_CONNECTIONS`). */
  maxConnections: number;
  /** How long a deterministic failure is replayed to a retry of the same body (`MOA_FAILURE_REPLAY_SECONDS`). */
  failureReplaySeconds: number;
  /** `MOA_FILES_DIR`: batch files' content on disk there (the workers must have the same); undefined keeps it in Redis. */
  filesDir: string | undefined;
  logLevel: string;
  moa: MoaConfig;
}

/** Reads and validates the API's environment; the only place it touches `process.env` for settings. */
export function loadApiConfig(environment: NodeJS.ProcessEnv = process.env): ApiConfig {
  const values = parseEnvironment(environmentSchema, environment);
  const apiKeys = splitKeyList(values.MOA_API_KEYS);
  const adminKeys = splitKeyList(values.MOA_ADMIN_KEYS);
  // Checked here so a short or doubled key stops the process at start, naming the variable.
  assertDistinctKeys([
    ...parseApiKeys(apiKeys, { variable: 'MOA_API_KEYS', admin: false }),
    ...parseApiKeys(adminKeys, { variable: 'MOA_ADMIN_KEYS', admin: true }),
  ]);
  return {
    redisUrl: values.REDIS_URL,
    port: values.PORT,
    host: values.HOST,
    queuePrefix: values.MOA_QUEUE_PREFIX,
    apiKeys,
    adminKeys,
    trustProxy: parseTrustProxy(values.MOA_TRUST_PROXY),
    allowUnauthenticated: values.MOA_AUTH === 'none',
    rateLimitRpm: values.MOA_RATE_LIMIT_RPM,
    maxBodyBytes: values.MOA_MAX_BODY_BYTES,
    webhookSecret: values.MOA_WEBHOOK_SECRET,
    redisCommandTimeoutMs: values.MOA_REDIS_COMMAND_TIMEOUT_MS,
    headersTimeoutMs: values.MOA_HEADERS_TIMEOUT_MS,
    bodyTimeoutMs: values.MOA_BODY_TIMEOUT_MS,
    uploadTimeoutMs: values.MOA_UPLOAD_TIMEOUT_MS,
    maxConnections: values.MOA_MAX_CONNECTIONS,
    failureReplaySeconds: values.MOA_FAILURE_REPLAY_SECONDS,
    filesDir: values.MOA_FILES_DIR,
    logLevel: values.LOG_LEVEL,
    moa: loadMoaConfig(values.MOA_CONFIG),
  };
}

/**
 * `MOA_TRUST_PROXY` as Express takes it: unset or `false` trusts no proxy;
 * `true` trusts every hop (only behind a proxy that strips client-sent
 * `X-Forwarded-*`); a number trusts that many hops; anything else is a
 * comma-separated list of addresses, CIDRs or `loopback`/`linklocal`/`uniquelocal`.
 */
export function parseTrustProxy(value: string | undefined): boolean | number | string {
  const trimmed = (value ?? '').trim();
  if (trimmed === '' || trimmed === 'false') return false;
  if (trimmed === 'true') return true;
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  return trimmed;
}

/** True for addresses that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Refuses an unauthenticated API on a non-loopback address unless
 * `MOA_AUTH=none` says so on purpose. Returns a warning to log, if any.
 */
export function checkListenPolicy(config: ApiConfig): { error?: string; warning?: string } {
  if (config.apiKeys.length + config.adminKeys.length > 0 || isLoopbackHost(config.host)) return {};
  if (config.allowUnauthenticated) {
    return { warning: `the API listens on ${config.host} without authentication (MOA_AUTH=none)` };
  }
  return {
    error:
      `refusing to listen on ${config.host} without authentication: set MOA_API_KEYS, ` +
      'or MOA_AUTH=none to allow an open API on purpose',
  };
}

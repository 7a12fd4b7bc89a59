import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ApiError } from './api-error.js';
import { bodyDigest } from './body-digest.js';

/*
 * Why: `x-should-retry: false` is honoured by the openai SDKs only. The AI
 * SDK retries every 5xx twice and LangChain up to six times, whatever the
 * header says, so a deterministic MoA failure (every proposer refused with a
 * 4xx, an aggregator's 400) would be run and paid for again by each retry.
 * Instead, a waiting request that failed deterministically is remembered for
 * a short while, by its caller and exact body, and the same request sent
 * again in that time gets the same answer at once, without a new run.
 */

/** What a remembered failure holds: the error object and the job that failed. */
const rememberedSchema = z.object({
  requestId: z.string(),
  status: z.int().min(400).max(599),
  message: z.string(),
  type: z.string(),
  param: z.string().nullable(),
  code: z.string().nullable(),
});

/** Options of {@link createFailureReplay}. */
export interface FailureReplayOptions {
  redis: Redis;
  /** The queue prefix: the records live beside the jobs. */
  prefix: string;
  /**
   * How long a deterministic failure is answered again without a run; 0
   * turns replay off. Long enough to cover the retries of the AI SDK
   * (seconds) and LangChain (up to about two minutes).
   * @defaultValue 300
   */
  ttlSeconds?: number;
}

/** Remembers and replays the deterministic failures of waiting requests. */
export interface FailureReplay {
  /** The failure remembered for this caller, route and body, if any, as its error answer. */
  find(tenant: string, route: string, body: unknown): Promise<ApiError | undefined>;
  /**
   * Remembers `error` when it says retrying cannot help (`x-should-retry:
   * false`); other errors are not remembered. Never throws: a failure to
   * remember only costs a retry its replay.
   */
  remember(tenant: string, route: string, body: unknown, requestId: string, error: ApiError): Promise<void>;
}

/** The header naming the job whose failure an answer replays. */
export const REPLAYED_FROM_HEADER = 'x-moa-replayed-from';

/** Creates the failure replay of waiting routes (chat completions, responses). */
export function createFailureReplay(options: FailureReplayOptions): FailureReplay {
  const ttlSeconds = options.ttlSeconds ?? 300;
  const keyOf = (tenant: string, route: string, body: unknown) =>
    `${options.prefix}:moa-failure-replay:${bodyDigest({ tenant, route, body })}`;
  return {
    async find(tenant, route, body) {
      if (ttlSeconds === 0) return undefined;
      const stored = await options.redis.get(keyOf(tenant, route, body));
      if (stored === null) return undefined;
      // Data from Redis is checked like any input: a record that does not parse is ignored.
      const parsed = rememberedSchema.safeParse(safeJson(stored));
      if (!parsed.success) return undefined;
      const record = parsed.data;
      return new ApiError(record.status, record.message, record.type, record.param, record.code, {
        'x-should-retry': 'false',
        'x-moa-job-id': record.requestId,
        [REPLAYED_FROM_HEADER]: record.requestId,
      });
    },
    async remember(tenant, route, body, requestId, error) {
      if (ttlSeconds === 0 || error.headers['x-should-retry'] !== 'false') return;
      const record: z.infer<typeof rememberedSchema> = {
        requestId,
        status: error.status,
        message: error.message,
        type: error.type,
        param: error.param,
        code: error.code,
      };
      await options.redis
        .set(keyOf(tenant, route, body), JSON.stringify(record), 'EX', ttlSeconds)
        .catch(() => undefined);
    },
  };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

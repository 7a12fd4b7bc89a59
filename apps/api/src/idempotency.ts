import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ApiError } from './api-error.js';

/** How long an `Idempotency-Key` is remembered. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

/** The outcome of claiming a key: ours to create, or an earlier request's. */
export type IdempotencyClaim = { kind: 'new' } | { kind: 'existing'; requestId: string };

function hash(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

/**
 * Claims `Idempotency-Key` for a request body, per caller. The same key with
 * the same body returns the first request; with another body it is a 409.
 * Atomic (SET NX), so two concurrent retries create one job.
 */
export async function claimIdempotencyKey(
  redis: Redis,
  prefix: string,
  caller: string,
  key: string,
  body: unknown,
  requestId: string,
): Promise<IdempotencyClaim> {
  if (key.length === 0 || key.length > 255) {
    throw new ApiError(
      400,
      'Idempotency-Key must be 1 to 255 characters',
      'invalid_request_error',
      'Idempotency-Key',
      'invalid_value',
    );
  }
  const redisKey = `${prefix}:moa-idempotency:${hash(`${caller}\n${key}`)}`;
  const bodyHash = hash(JSON.stringify(body));
  const claimed = await redis.set(
    redisKey,
    JSON.stringify({ requestId, bodyHash }),
    'EX',
    IDEMPOTENCY_TTL_SECONDS,
    'NX',
  );
  if (claimed === 'OK') return { kind: 'new' };
  const existing = JSON.parse((await redis.get(redisKey)) ?? '{}') as {
    requestId?: string;
    bodyHash?: string;
  };
  if (!existing.requestId) return { kind: 'new' };
  if (existing.bodyHash !== bodyHash) {
    throw new ApiError(
      409,
      'This Idempotency-Key was already used with a different request body',
      'invalid_request_error',
      'Idempotency-Key',
      'idempotency_key_reused',
    );
  }
  return { kind: 'existing', requestId: existing.requestId };
}

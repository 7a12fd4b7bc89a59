import { requestJobKey } from '@moa-queue/contract';
import type { Redis } from 'ioredis';
import { ApiError } from './api-error.js';
import { bodyDigest, sha256 } from './body-digest.js';

/** How long an `Idempotency-Key` is remembered. */
export const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;

/**
 * How old a claim whose request was never created may get before a retry
 * takes it over. Creating a request takes milliseconds, and each of its
 * Redis commands gives up after the command timeout (2 s), so a claim this
 * old without its job belongs to a request that failed and could not give
 * its claim back (Redis was unreachable, or the API process died).
 */
export const IDEMPOTENCY_STALE_CLAIM_MS = 15_000;

/** A claim on a key that is ours: create the request through {@link guardedCreate}. */
export interface NewClaim {
  kind: 'new';
  /** Gives the key back (only while its request does not exist). */
  release(): Promise<void>;
  /** Records that the request exists, so the claim is never taken over. */
  confirm(): Promise<void>;
}

/** The outcome of claiming a key: ours to create, or an earlier request's. */
export type IdempotencyClaim = NewClaim | { kind: 'existing'; requestId: string };

/**
 * Gives a claim back, only if it is still ours and its request does not
 * exist. Run after a failed create: on a connection where commands time out
 * the create may still run later, and Redis runs it before this script (one
 * connection, in order), so a late job keeps its claim.
 * KEYS: claim, job. ARGV: the claim's value.
 */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.call('DEL', KEYS[1])
end
return 0`;

/** Replaces a claim's value by ARGV[2] if it is still ARGV[1], keeping its TTL (no KEEPTTL: Redis 5). */
const CONFIRM_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
return 1`;

/**
 * Takes over a claim whose request was never created: still the value read
 * (not confirmed), its job absent, and claimed more than ARGV[4] ms ago
 * (from the key's TTL, so no clock is compared). KEYS: claim, job of the
 * old claim. ARGV: old value, new value, TTL in seconds, stale age in ms.
 */
const TAKEOVER_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] or redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local age = tonumber(ARGV[3]) * 1000 - redis.call('PTTL', KEYS[1])
if age < tonumber(ARGV[4]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1`;

/**
 * Claims `Idempotency-Key` for a request body, per caller. The same key with
 * the same body returns the first request; with another body it is a 409.
 * Atomic (SET NX), so two concurrent retries create one job. A claim whose
 * request failed to be created does not block the key: the failed request
 * releases it, and a claim left behind anyway (Redis was down for the
 * release too) is taken over once it is {@link IDEMPOTENCY_STALE_CLAIM_MS}
 * old and its request still does not exist.
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
  const redisKey = `${prefix}:moa-idempotency:${sha256(`${caller}\n${key}`)}`;
  const bodyHash = bodyDigest(body);
  const value = JSON.stringify({ requestId, bodyHash });
  const ours: NewClaim = {
    kind: 'new',
    async release() {
      await redis.eval(RELEASE_SCRIPT, 2, redisKey, requestJobKey(prefix, requestId), value);
    },
    async confirm() {
      const confirmed = JSON.stringify({ requestId, bodyHash, created: true });
      await redis.eval(CONFIRM_SCRIPT, 1, redisKey, value, confirmed);
    },
  };
  const claimed = await redis.set(redisKey, value, 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
  if (claimed === 'OK') return ours;
  const current = await redis.get(redisKey);
  const existing = JSON.parse(current ?? '{}') as { requestId?: string; bodyHash?: string; created?: true };
  if (!existing.requestId) {
    // Expired or released between the two commands: claim it again.
    const again = await redis.set(redisKey, value, 'EX', IDEMPOTENCY_TTL_SECONDS, 'NX');
    if (again === 'OK') return ours;
    throw inUse();
  }
  if (existing.bodyHash !== bodyHash) {
    throw new ApiError(
      409,
      'This Idempotency-Key was already used with a different request body',
      'invalid_request_error',
      'Idempotency-Key',
      'idempotency_key_reused',
    );
  }
  if (existing.created) return { kind: 'existing', requestId: existing.requestId };
  const takenOver = await redis.eval(
    TAKEOVER_SCRIPT,
    2,
    redisKey,
    requestJobKey(prefix, existing.requestId),
    current ?? '',
    value,
    IDEMPOTENCY_TTL_SECONDS,
    IDEMPOTENCY_STALE_CLAIM_MS,
  );
  if (takenOver === 1) return ours;
  return { kind: 'existing', requestId: existing.requestId };
}

/**
 * Creates a request under a claim (or without one): a create that fails
 * gives the key back before its error goes on, so a retry with the same key
 * and body creates the request; one that succeeds confirms the claim. Both
 * are best effort: when Redis cannot take them, a claim left behind is taken
 * over once stale, and an unconfirmed one only while its request is absent.
 */
export async function guardedCreate<T>(
  claim: IdempotencyClaim | undefined,
  create: () => Promise<T>,
): Promise<T> {
  if (claim?.kind !== 'new') return create();
  let created: T;
  try {
    created = await create();
  } catch (error) {
    await claim.release().catch(() => undefined);
    throw error;
  }
  await claim.confirm().catch(() => undefined);
  return created;
}

function inUse(): ApiError {
  return new ApiError(
    409,
    'A request with this Idempotency-Key is still being created; retry',
    'invalid_request_error',
    'Idempotency-Key',
    'idempotency_key_in_use',
  );
}

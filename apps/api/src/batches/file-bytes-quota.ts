import { fileKey, tenantFileBytesKey } from '@moa-queue/contract';
import type { Redis } from 'ioredis';
import { quotaExceeded } from '../quota-error.js';

/**
 * The `maxFileBytes` quota: the bytes of a tenant's stored files (uploads
 * and its batches' output), from the sizes `saveStoredFile` records per
 * tenant. Files that expired leave their size behind; those entries are
 * pruned (the file's hash is gone) whenever the sum reaches the limit, so
 * the count never needs a write when a file expires.
 */
export interface FileBytesQuota {
  /**
   * Throws 429 `quota_file_bytes` when the tenant's files take more than
   * `limit` bytes — or, with `full: true`, when they take the whole limit
   * (before an upload: there is no room for even one more byte).
   */
  check(tenant: string, limit: number, options?: { full?: boolean }): Promise<void>;
}

/** Creates the quota. */
export function createFileBytesQuota(redis: Redis, prefix: string): FileBytesQuota {
  const sum = (sizes: string[]) => sizes.reduce((total, size) => total + (Number(size) || 0), 0);

  async function prunedUsage(tenant: string): Promise<number> {
    const key = tenantFileBytesKey(prefix, tenant);
    const sizes = await redis.hgetall(key);
    const ids = Object.keys(sizes);
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.exists(fileKey(prefix, id));
    const exists = (await pipeline.exec()) ?? [];
    const gone = ids.filter((_id, index) => exists[index]?.[1] === 0);
    if (gone.length > 0) await redis.hdel(key, ...gone);
    return sum(ids.filter((id) => !gone.includes(id)).map((id) => sizes[id] ?? '0'));
  }

  return {
    async check(tenant, limit, options = {}) {
      const over = (usage: number) => (options.full ? usage >= limit : usage > limit);
      if (!over(sum(await redis.hvals(tenantFileBytesKey(prefix, tenant))))) return;
      if (!over(await prunedUsage(tenant))) return;
      throw quotaExceeded({
        code: 'quota_file_bytes',
        message: `Stored files would exceed this key's quota of ${limit} bytes; delete files (DELETE /v1/files/{id}) or wait for them to expire`,
        retryAfterSeconds: 60,
      });
    },
  };
}

import type { Redis } from 'ioredis';
import { z } from 'zod';
import { ApiError } from './api-error.js';

/**
 * A list's `limit` query parameter, 1 to `max`, with messages naming the
 * bound it breaks (OpenAI's lists: batches 1–100, files 1–10,000).
 */
export function pageLimitSchema(max: number) {
  return z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(max, `must be at most ${max}`)
    .optional();
}

/** Options of {@link pageFromIndex}: OpenAI's list parameters. */
export interface IndexPageOptions<T> {
  limit: number;
  /** The id of the last object of the previous page. */
  after?: string;
  /** By creation time. @defaultValue 'desc' */
  order?: 'asc' | 'desc';
  /** Loads the objects of some ids; undefined for one that no longer exists. */
  load: (ids: string[]) => Promise<(T | undefined)[]>;
  /** Which loaded objects the list shows (e.g. one purpose). @defaultValue all */
  keep?: (object: T) => boolean;
}

/** A page of an OpenAI-style list. */
export interface IndexPage<T> {
  data: T[];
  hasMore: boolean;
}

/**
 * One page of a list kept as a sorted set of ids by creation time (the
 * index of batches or files, all or one tenant's). Ids whose object has
 * expired from Redis are dropped from the index on the way, so lists stay
 * right without anyone removing entries when objects expire.
 *
 * @throws ApiError 400 naming `after` for a cursor that is not in the index.
 */
export async function pageFromIndex<T>(
  redis: Redis,
  index: string,
  options: IndexPageOptions<T>,
): Promise<IndexPage<T>> {
  const descending = (options.order ?? 'desc') === 'desc';
  let start = 0;
  if (options.after !== undefined) {
    const rank = descending
      ? await redis.zrevrank(index, options.after)
      : await redis.zrank(index, options.after);
    if (rank === null) {
      throw new ApiError(
        400,
        `Unknown cursor ${JSON.stringify(options.after)}`,
        'invalid_request_error',
        'after',
        'invalid_value',
      );
    }
    start = rank + 1;
  }
  const data: T[] = [];
  const step = Math.min(options.limit + 1, 500);
  for (let cursor = start; ;) {
    const ids = descending
      ? await redis.zrevrange(index, cursor, cursor + step - 1)
      : await redis.zrange(index, cursor, cursor + step - 1);
    if (ids.length === 0) return { data, hasMore: false };
    const objects = await options.load(ids);
    const gone = ids.filter((_id, position) => objects[position] === undefined);
    if (gone.length > 0) await redis.zrem(index, ...gone);
    cursor += ids.length - gone.length;
    for (const object of objects) {
      if (object === undefined || (options.keep && !options.keep(object))) continue;
      if (data.length === options.limit) return { data, hasMore: true };
      data.push(object);
    }
  }
}

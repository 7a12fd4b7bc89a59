import type { Redis } from 'ioredis';

/** Every value under one key, whatever its type, as buffers (hash fields and values, stream fields...). */
async function valuesOf(redis: Redis, key: string): Promise<Buffer[]> {
  switch (await redis.type(key)) {
    case 'string':
      return [(await redis.getBuffer(key)) ?? Buffer.alloc(0)];
    case 'list':
      return redis.lrangeBuffer(key, 0, -1);
    case 'hash':
      return Object.values(await redis.hgetallBuffer(key));
    case 'set':
      return redis.smembersBuffer(key);
    case 'zset':
      return redis.zrangeBuffer(key, 0, -1);
    case 'stream':
      return (await redis.xrangeBuffer(key, '-', '+')).flatMap(([, fields]) => fields);
    default:
      return [];
  }
}

/**
 * The keys under `prefix` holding `needle` anywhere in their values: to
 * show what Redis keeps, and what it does not (file content with
 * `MOA_FILES_DIR` set).
 */
export async function keysHolding(redis: Redis, prefix: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      if ((await valuesOf(redis, key)).some((value) => value.includes(needle))) found.push(key);
    }
  } while (cursor !== '0');
  return found.sort();
}

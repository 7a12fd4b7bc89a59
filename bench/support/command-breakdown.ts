import type { Redis } from 'ioredis';

/** Calls per Redis command (INFO commandstats), for finding what dominates. */
export async function commandBreakdown(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const counts = new Map<string, number>();
  for (const match of info.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) counts.set(match[1]!, Number(match[2]));
  return counts;
}

/** The commands whose counts grew the most between two breakdowns, per request. */
export function topCommands(
  before: Map<string, number>,
  after: Map<string, number>,
  requests: number,
  top = 12,
) {
  return [...after]
    .map(([command, calls]) => ({ command, perRequest: (calls - (before.get(command) ?? 0)) / requests }))
    .filter((entry) => entry.perRequest > 0)
    .sort((left, right) => right.perRequest - left.perRequest)
    .slice(0, top);
}

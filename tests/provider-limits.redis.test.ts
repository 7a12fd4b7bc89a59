import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

/** The most requests the fake had in flight at once, from their arrival and end times. */
function maxInFlight(requests: { receivedAt: number; finishedAt?: number }[]): number {
  const edges = requests.flatMap((recorded) => [
    { at: recorded.receivedAt, change: 1 },
    { at: recorded.finishedAt ?? Infinity, change: -1 },
  ]);
  edges.sort((left, right) => left.at - right.at || left.change - right.change);
  let current = 0;
  let most = 0;
  for (const edge of edges) {
    current += edge.change;
    most = Math.max(most, current);
  }
  return most;
}

describe('per-provider limits across all workers', () => {
  let stack: MoaStack;
  beforeAll(async () => {
    stack = await startMoaStack({
      name: 'limits',
      redisUrl: inject('redisUrl'),
      workers: 2,
      fake: { defaultLatencyMs: 200 },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("a provider's concurrency holds for two worker processes together", async () => {
    const created = await Promise.all(
      [0, 1, 2].map((index) =>
        stack.submit({ preset: 'narrow', messages: [{ role: 'user', content: `lane ${index}` }] }),
      ),
    );
    const jobs = await Promise.all(created.map((job) => stack.waitFor(job.id, 60_000)));
    expect(jobs.every((job) => job.status === 'completed')).toBe(true);
    const lanes = stack.fake.requests.filter((recorded) => recorded.model.startsWith('lane-'));
    expect(lanes).toHaveLength(18);
    // 18 calls of 200 ms, 2 at a time: never more than 2 in flight, so at least 9 rounds.
    expect(maxInFlight(lanes)).toBe(2);
    expect(
      Math.max(...lanes.map((recorded) => recorded.finishedAt!)) -
        Math.min(...lanes.map((recorded) => recorded.receivedAt)),
    ).toBeGreaterThanOrEqual(9 * 200);
  });
});

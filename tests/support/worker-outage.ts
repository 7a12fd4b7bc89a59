import type { JobView } from '@moa-queue/api';
import { pollUntil, type TsProcess } from '@moa-queue/test-support';
import { expect } from 'vitest';
import { redisUpOfWorkers, type MoaStack } from './moa-stack.js';

/** pino's numeric levels. */
const WARN = 40;
const ERROR = 50;

const OUTAGE = 'redis unavailable: waiting for it to recover';
const RECOVERY = 'redis available again';
const FORGIVEN = 'locks lapsed while redis was unavailable: those jobs run again, not counted as stalls';
const COUNTED = 'lost the lock of running jobs: they will run again';

/** What one worker process logged about a Redis outage, from line `from` of its log on. */
export interface OutageStory {
  /** Outages it logged (a warning each) and their ends (an info line each). */
  unavailable: number;
  recovered: number;
  /** Every error message it named: each outage's first, then the distinct ones its recovery lists. */
  seen: string[];
  /** Lines saying lapsed locks were put down to the outage, and lines counting them as stalls. */
  forgiven: number;
  counted: number;
  /** Every error-level line, as `message: error queue`. */
  errors: string[];
  warnings: number;
}

/** The outage story of `worker` from line `from` of its log. */
export function outageStory(worker: TsProcess, from: number): OutageStory {
  const logs = worker.logs.slice(from);
  const outages = logs.filter((line) => line.msg === OUTAGE);
  const recoveries = logs.filter((line) => line.msg === RECOVERY);
  return {
    unavailable: outages.length,
    recovered: recoveries.length,
    seen: [
      ...outages.map((line) => String(line.error)),
      ...recoveries.flatMap((line) => (line.messages as string[] | undefined) ?? []),
    ],
    forgiven: logs.filter((line) => line.msg === FORGIVEN).length,
    counted: logs.filter((line) => line.msg === COUNTED).length,
    errors: logs
      .filter((line) => Number(line.level) >= ERROR)
      .map((line) => `${String(line.msg)}: ${String(line.error)} ${String(line.queue ?? '')}`),
    warnings: logs.filter((line) => Number(line.level) === WARN).length,
  };
}

/** Waits until every worker of the stack exports `moa_redis_up` equal to `value`. */
export async function workersSeeRedisUp(stack: MoaStack, value: 0 | 1, timeoutMs = 30_000): Promise<void> {
  await pollUntil(
    () => redisUpOfWorkers(stack),
    (values) => values.every((each) => each === value),
    timeoutMs,
    200,
  );
}

/** The requests every outage test runs through its fault: 12, of the stack's 3 + 3 + 1 preset. */
const REQUESTS = 12;

/** Submits the requests, and waits until calls of their first layer are at the fake provider. */
export async function submitRunningRequests(stack: MoaStack, tag: string): Promise<JobView[]> {
  const created = await Promise.all(
    Array.from({ length: REQUESTS }, (_, index) =>
      stack.submit({ messages: [{ role: 'user', content: `${tag} ${index}` }] }),
    ),
  );
  await pollUntil(
    () => stack.fake.requests.length,
    (count) => count >= 6,
    60_000,
  );
  return created;
}

/**
 * Waits for every request to end; each must have completed with all its
 * calls answered, none failed for Redis. (A call whose completion Redis
 * refused inside BullMQ's own move may be made again, as after a crash:
 * see docs/operations.md.)
 */
export async function expectAllCompleted(stack: MoaStack, created: JobView[]): Promise<JobView[]> {
  const jobs = await Promise.all(created.map((job) => stack.waitFor(job.id, 180_000)));
  expect(jobs.map((job) => [job.status, job.error?.code ?? null])).toEqual(
    Array(created.length).fill(['completed', null]),
  );
  for (const job of jobs) {
    expect(job.layers.map((layer) => layer.calls.length)).toEqual([3, 3, 1]);
    for (const layer of job.layers) for (const call of layer.calls) expect(call.status).toBe('completed');
  }
  return jobs;
}

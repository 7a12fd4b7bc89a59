import { Writable } from 'node:stream';
import { DelayedError, UnrecoverableError, WaitingChildrenError } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { endsRequest } from './orchestrator-processor.js';
import { createStallForgiveness } from './stall-forgiveness.js';

function setup(healthy: boolean, lastErrorAt = 0) {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _encoding, callback) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        callback();
      },
    }),
  );
  const evalCalls: unknown[][] = [];
  const redis = {
    eval: vi.fn(async (...args: unknown[]) => {
      evalCalls.push(args);
      return 0;
    }),
  } as unknown as Redis;
  const health = {
    onError: () => true,
    onReady: () => undefined,
    healthy,
    lastErrorAt,
    whenHealthy: async () => undefined,
    close: () => undefined,
  };
  const forgiveness = createStallForgiveness({ redis, prefix: 'p', health, logger, lockDurationMs: 30_000 });
  return { forgiveness, evalCalls, lines };
}

describe('stall forgiveness', () => {
  it('takes back the stall of a lock lost during an outage, once per job however often it is reported', async () => {
    // Healthy again, but an infrastructure error was seen a moment ago.
    const { forgiveness, evalCalls, lines } = setup(true, Date.now());
    forgiveness.lockLost('moa-requests', ['job_a', 'job_b']);
    // The lock manager reports a lapsed lock at every renewal until the run ends.
    forgiveness.lockLost('moa-requests', ['job_a']);
    await vi.waitFor(() => expect(evalCalls).toHaveLength(2));
    expect(evalCalls.map((call) => call[2])).toEqual(['p:moa-requests:job_a', 'p:moa-requests:job_b']);
    expect(String(evalCalls[0]![0])).toContain("HINCRBY', KEYS[1], 'stc', -1");
    expect(lines.map((line) => line.msg)).toEqual([
      'locks lapsed while redis was unavailable: those jobs run again, not counted as stalls',
    ]);
  });

  it('while Redis is still unavailable, forgives too', async () => {
    const { forgiveness, evalCalls } = setup(false);
    forgiveness.lockLost('moa-llm-fake', ['job_x-L1-A0']);
    await vi.waitFor(() => expect(evalCalls).toHaveLength(1));
  });

  it('counts a lock lost with no outage in sight (a blocked event loop): the stall stands', async () => {
    // The last outage ended long ago (more than two lock durations and 5 s).
    const { forgiveness, evalCalls, lines } = setup(true, Date.now() - 70_000);
    forgiveness.lockLost('moa-requests', ['job_c']);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(evalCalls).toHaveLength(0);
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      [40, 'lost the lock of running jobs: they will run again'],
    ]);
  });
});

describe('endsRequest', () => {
  const job = (attemptsMade: number) => ({ attemptsMade, opts: { attempts: 3 } });
  const oom = Object.assign(new Error("OOM command not allowed when used memory > 'maxmemory'."), {
    name: 'ReplyError',
  });

  it('an unrecoverable error, or any error on the last attempt, ends the request', () => {
    expect(endsRequest(job(0), new UnrecoverableError('too few proposers'))).toBe(true);
    expect(endsRequest(job(2), new TypeError('a bug'))).toBe(true);
    expect(endsRequest(job(1), new TypeError('a bug'))).toBe(false);
  });

  it('a Redis error, a BullMQ signal or a lost job never does, not even on the last attempt', () => {
    expect(endsRequest(job(2), oom)).toBe(false);
    const lost = Object.assign(new Error('Missing lock for job job_1. moveToWaitingChildren'), { code: -2 });
    expect(endsRequest(job(2), lost)).toBe(false);
    expect(endsRequest(job(2), new DelayedError())).toBe(false);
    expect(endsRequest(job(2), new WaitingChildrenError())).toBe(false);
  });
});

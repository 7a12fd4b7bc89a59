import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createConnectionStateLogger } from './connection-state-log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      callback();
    },
  });
  return { lines, logger: pino({ level: 'debug' }, stream) };
}

/** pino's numeric levels. */
const WARN = 40;
const INFO = 30;

function oom(): Error {
  const error = new Error("OOM command not allowed when used memory > 'maxmemory'.");
  error.name = 'ReplyError';
  return error;
}

function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), {
    code: 'ECONNREFUSED',
    syscall: 'connect',
  });
}

afterEach(() => {
  vi.useRealTimers();
});

describe('createConnectionStateLogger', () => {
  it('logs an outage once (warn) and its recovery once (info), however many errors came between', () => {
    const { lines, logger } = capture();
    let clock = 1000;
    const state = createConnectionStateLogger(logger, 'worker', { now: () => clock });
    for (let index = 0; index < 500; index += 1) {
      expect(state.onError(index % 2 ? oom() : refused())).toBe(true);
      clock += 10;
    }
    expect(state.healthy).toBe(false);
    clock += 1000;
    state.onReady();
    state.onReady();
    expect(state.healthy).toBe(true);
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      [WARN, 'redis unavailable: waiting for it to recover'],
      [INFO, 'redis available again'],
    ]);
    expect(lines[0]).toMatchObject({ redis: 'worker', error: 'connect ECONNREFUSED 127.0.0.1:6379' });
    expect(lines[1]).toMatchObject({ redis: 'worker', downMs: 6000, errors: 499 });
    expect(lines[1]!.messages).toEqual([
      'connect ECONNREFUSED 127.0.0.1:6379',
      "OOM command not allowed when used memory > 'maxmemory'.",
    ]);
  });

  it('leaves other errors to the caller and stays healthy', () => {
    const { lines, logger } = capture();
    const state = createConnectionStateLogger(logger, 'api');
    expect(state.onError(new Error('Missing lock for job job_1. moveToFinished'))).toBe(false);
    expect(state.onError(new TypeError('a bug'))).toBe(false);
    expect(state.healthy).toBe(true);
    expect(lines).toEqual([]);
  });

  it('ignores a recovery report while errors are still arriving', () => {
    const { lines, logger } = capture();
    let clock = 0;
    const state = createConnectionStateLogger(logger, 'worker', { now: () => clock, settleMs: 250 });
    state.onError(oom());
    clock += 100;
    state.onReady();
    expect(state.healthy).toBe(false);
    clock += 250;
    state.onReady();
    expect(state.healthy).toBe(true);
    expect(lines).toHaveLength(2);
  });

  it('reminds once a minute while the outage lasts, not per error', () => {
    const { lines, logger } = capture();
    let clock = 0;
    const state = createConnectionStateLogger(logger, 'worker', { now: () => clock });
    for (let second = 0; second < 150; second += 1) {
      for (let index = 0; index < 20; index += 1) state.onError(oom());
      clock += 1000;
    }
    expect(lines.map((line) => line.msg)).toEqual([
      'redis unavailable: waiting for it to recover',
      'redis still unavailable',
      'redis still unavailable',
    ]);
    expect(lines.every((line) => line.level === WARN)).toBe(true);
  });

  it('with a probe, finds the recovery itself and wakes whoever waits for it', async () => {
    vi.useFakeTimers();
    const { lines, logger } = capture();
    let full = true;
    const probe = vi.fn(async () => {
      if (full) throw oom();
      return 'OK';
    });
    const state = createConnectionStateLogger(logger, 'worker', {
      probe,
      probeIntervalMs: 1000,
      settleMs: 0,
    });
    await state.whenHealthy(); // healthy: resolves at once
    state.onError(oom());
    let woken = false;
    void state.whenHealthy().then(() => (woken = true));
    await vi.advanceTimersByTimeAsync(3500);
    expect(probe).toHaveBeenCalledTimes(3);
    expect(woken).toBe(false);
    full = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(woken).toBe(true);
    expect(state.healthy).toBe(true);
    // No probing while healthy.
    await vi.advanceTimersByTimeAsync(10_000);
    expect(probe).toHaveBeenCalledTimes(4);
    expect(lines.map((line) => line.msg)).toEqual([
      'redis unavailable: waiting for it to recover',
      'redis available again',
    ]);
    state.close();
  });

  it('with watchIntervalMs, notices a Redis that answers nothing (paused) by the probe timing out, and its end', async () => {
    vi.useFakeTimers();
    const { lines, logger } = capture();
    let paused = false;
    const hanging: (() => void)[] = [];
    // A paused Redis neither answers nor fails: the command waits until it resumes.
    const probe = vi.fn(
      () =>
        new Promise<string>((resolve) => {
          if (paused) hanging.push(() => resolve('OK'));
          else resolve('OK');
        }),
    );
    const state = createConnectionStateLogger(logger, 'worker', {
      probe,
      watchIntervalMs: 5000,
      probeTimeoutMs: 2000,
      probeIntervalMs: 1000,
      settleMs: 0,
    });
    // Healthy: one probe per interval, each answered.
    await vi.advanceTimersByTimeAsync(10_500);
    expect(probe).toHaveBeenCalledTimes(2);
    expect(state.healthy).toBe(true);

    paused = true;
    await vi.advanceTimersByTimeAsync(5000); // the next probe starts, and hangs
    expect(state.healthy).toBe(true);
    await vi.advanceTimersByTimeAsync(2000); // its bound passes
    expect(state.healthy).toBe(false);
    expect(lines.at(-1)).toMatchObject({ level: WARN, error: 'Command timed out' });
    // During the outage the recovery probe runs instead (every second, each bounded too).
    const beforeOutageProbes = probe.mock.calls.length;
    await vi.advanceTimersByTimeAsync(6000);
    expect(probe.mock.calls.length - beforeOutageProbes).toBeGreaterThanOrEqual(2);
    expect(state.healthy).toBe(false);

    paused = false;
    for (const resume of hanging.splice(0)) resume();
    await vi.advanceTimersByTimeAsync(3000);
    expect(state.healthy).toBe(true);
    expect(lines.map((line) => line.msg)).toEqual([
      'redis unavailable: waiting for it to recover',
      'redis available again',
    ]);
    // Watching again: a second pause is noticed as well.
    paused = true;
    await vi.advanceTimersByTimeAsync(7500);
    expect(state.healthy).toBe(false);
    state.close();
    // Closed: no probe runs any more.
    const atClose = probe.mock.calls.length;
    await vi.advanceTimersByTimeAsync(30_000);
    expect(probe.mock.calls.length).toBe(atClose);
  });

  it('logs each of two separate outages', () => {
    const { lines, logger } = capture();
    let clock = 0;
    const state = createConnectionStateLogger(logger, 'worker', { now: () => clock });
    state.onError(oom());
    clock += 1000;
    state.onReady();
    clock += 1000;
    state.onError(refused());
    clock += 1000;
    state.onReady();
    expect(lines.map((line) => line.msg)).toEqual([
      'redis unavailable: waiting for it to recover',
      'redis available again',
      'redis unavailable: waiting for it to recover',
      'redis available again',
    ]);
  });
});

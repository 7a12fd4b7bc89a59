import { describe, expect, it } from 'vitest';
import { mayForget } from './batch-item-sweeper.js';

describe('mayForget', () => {
  it('removes an item whose request is gone or never existed', () => {
    expect(mayForget({ state: 'gone', recorded: false, batchRunning: true })).toBe(true);
  });

  it('never removes a request that has not ended', () => {
    expect(mayForget({ state: 'running', recorded: true, batchRunning: false })).toBe(false);
  });

  it('keeps an ended request of a running batch until it is recorded (the reconciler reads it)', () => {
    expect(mayForget({ state: 'ended', recorded: false, batchRunning: true })).toBe(false);
    expect(mayForget({ state: 'ended', recorded: true, batchRunning: true })).toBe(true);
    expect(mayForget({ state: 'ended', recorded: false, batchRunning: false })).toBe(true);
  });
});

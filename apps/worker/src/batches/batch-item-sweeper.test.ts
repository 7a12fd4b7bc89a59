import { describe, expect, it } from 'vitest';
import { mayForget } from './batch-item-sweeper.js';

describe('mayForget', () => {
  it('removes an item whose request is gone or never existed', () => {
    expect(mayForget({ state: 'unknown', recorded: false, batchRunning: true })).toBe(true);
  });

  it('never removes a request that has not ended', () => {
    for (const state of ['waiting', 'prioritized', 'delayed', 'active', 'waiting-children']) {
      expect(mayForget({ state, recorded: true, batchRunning: false })).toBe(false);
    }
  });

  it('keeps an ended request of a running batch until it is recorded (the reconciler reads it)', () => {
    for (const state of ['completed', 'failed']) {
      expect(mayForget({ state, recorded: false, batchRunning: true })).toBe(false);
      expect(mayForget({ state, recorded: true, batchRunning: true })).toBe(true);
      expect(mayForget({ state, recorded: false, batchRunning: false })).toBe(true);
    }
  });
});

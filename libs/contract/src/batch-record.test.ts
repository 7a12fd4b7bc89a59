import { describe, expect, it } from 'vitest';
import { batchObject, requestCountsOf } from './batch-record.js';

const counted = { total: '5', completed: '2', failed: '2', cancelled: '1' };

describe('requestCountsOf', () => {
  it('counts 0/0/0 for a failed batch, whatever was counted before it failed', () => {
    // A JSON array: its lines were counted as failed while it was read, then the batch failed.
    expect(requestCountsOf({ status: 'failed', failed: '3', items: '3' })).toEqual({
      total: 0,
      completed: 0,
      failed: 0,
      cancelled: 0,
    });
    expect(requestCountsOf({ status: 'failed', validated: '1', ...counted })).toEqual({
      total: 0,
      completed: 0,
      failed: 0,
      cancelled: 0,
    });
  });

  it('counts 0/0/0 until the validation has read the whole file', () => {
    for (const status of ['validating', 'cancelling']) {
      expect(requestCountsOf({ status, completed: '4', failed: '1' })).toEqual({
        total: 0,
        completed: 0,
        failed: 0,
        cancelled: 0,
      });
    }
  });

  it('reports the counters of a validated batch, cancelled apart from failed', () => {
    for (const status of ['in_progress', 'cancelling', 'completed', 'cancelled', 'expired']) {
      expect(requestCountsOf({ status, validated: '1', ...counted })).toEqual({
        total: 5,
        completed: 2,
        failed: 2,
        cancelled: 1,
      });
    }
  });

  it('is what the batch object shows', () => {
    const batch = batchObject({ id: 'batch_x', status: 'cancelled', validated: '1', ...counted });
    expect(batch.request_counts).toEqual({ total: 5, completed: 2, failed: 2 });
    expect(batch.moa.cancelled).toBe(1);
    expect(batchObject({ id: 'batch_y', status: 'failed', failed: '1' }).request_counts).toEqual({
      total: 0,
      completed: 0,
      failed: 0,
    });
  });
});

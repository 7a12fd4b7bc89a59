import { describe, expect, it } from 'vitest';
import { batchIdOfItem, batchItemRequestId } from './batch-keys.js';

describe('batchIdOfItem', () => {
  it('finds the batch of any item, an `x` in the batch id included', () => {
    for (const batchId of ['batch_abc', 'batch_x1x2x', 'batch_Ax9']) {
      for (const index of [0, 7, 49_999]) {
        expect(batchIdOfItem(batchItemRequestId(batchId, index))).toBe(batchId);
      }
    }
  });

  it('is undefined for a request that is no batch item', () => {
    expect(batchIdOfItem('job_abcdef')).toBeUndefined();
    expect(batchIdOfItem('job_abcx')).toBeUndefined();
    expect(batchIdOfItem('job_abcx1-L1-A0')).toBeUndefined();
  });
});

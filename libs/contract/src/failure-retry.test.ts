import { describe, expect, it } from 'vitest';
import { finishReasonOf } from './chat-completion.js';
import { failureMayRecover } from './failure-retry.js';
import type { CallView, LayerView } from './job-view.js';

function call(
  status: 'completed' | 'failed',
  error: CallView['error'] = null,
  finishReason: string | null = null,
) {
  return {
    model: 'fake/x',
    status,
    output: status === 'completed' ? 'answer' : null,
    usage: { prompt_tokens: 1, completion_tokens: 1 },
    cost_usd: null,
    latency_ms: 1,
    attempts: 1,
    finish_reason: finishReason,
    references_cut: [],
    max_tokens_lowered: null,
    references_halved: false,
    error,
  } satisfies CallView;
}

const layer = (number: number, role: LayerView['role'], calls: CallView[]): LayerView => ({
  layer: number,
  role,
  duration_ms: 1,
  calls,
});
const moaError = (code: string) => ({ message: 'failed', type: 'moa_error', code });
const callError = (type: string, code: string | null = null) => ({ message: 'x', type, code });

describe('failureMayRecover', () => {
  it('is false when every failed proposer was refused (4xx): the same request fails the same way', () => {
    expect(
      failureMayRecover({
        error: moaError('too_few_proposers'),
        layers: [
          layer(1, 'proposer', [
            call('failed', callError('invalid_request_error')),
            call('failed', callError('not_found_error')),
          ]),
        ],
      }),
    ).toBe(false);
  });

  it('is true when a failed proposer failed transiently (5xx, timeout, deadline)', () => {
    for (const type of ['server_error', 'timeout_error', 'connection_error', 'rate_limit_error']) {
      expect(
        failureMayRecover({
          error: moaError('too_few_proposers'),
          layers: [
            layer(1, 'proposer', [
              call('failed', callError('invalid_request_error')),
              call('failed', callError(type)),
            ]),
          ],
        }),
        type,
      ).toBe(true);
    }
  });

  it("follows the aggregator's own error", () => {
    const failedAggregator = (error: CallView['error']) => ({
      error: moaError('aggregator_failed'),
      layers: [layer(1, 'proposer', [call('completed')]), layer(2, 'aggregator', [call('failed', error)])],
    });
    expect(failureMayRecover(failedAggregator(callError('invalid_request_error')))).toBe(false);
    expect(
      failureMayRecover(failedAggregator(callError('invalid_request_error', 'context_length_exceeded'))),
    ).toBe(false);
    expect(failureMayRecover(failedAggregator(callError('server_error')))).toBe(true);
  });

  it('is false for a cost cap or a context length, true for an unknown failure', () => {
    expect(failureMayRecover({ error: moaError('cost_cap_exceeded'), layers: [] })).toBe(false);
    expect(failureMayRecover({ error: moaError('context_length_exceeded'), layers: [] })).toBe(false);
    expect(
      failureMayRecover({ error: { message: 'crash', type: 'server_error', code: null }, layers: [] }),
    ).toBe(true);
    expect(failureMayRecover({ error: null, layers: [] })).toBe(true);
  });
});

describe('finishReasonOf', () => {
  it("is the aggregator call's finish_reason in OpenAI's set, stop when unknown", () => {
    const withAggregator = (reason: string | null) => ({
      layers: [
        layer(1, 'proposer', [call('completed', null, 'length')]),
        layer(2, 'aggregator', [call('completed', null, reason)]),
      ],
    });
    expect(finishReasonOf(withAggregator('length'))).toBe('length');
    expect(finishReasonOf(withAggregator('stop'))).toBe('stop');
    expect(finishReasonOf(withAggregator('content_filter'))).toBe('content_filter');
    expect(finishReasonOf(withAggregator('eos'))).toBe('stop');
    expect(finishReasonOf(withAggregator(null))).toBe('stop');
    expect(finishReasonOf({ layers: [] })).toBe('stop');
  });
});

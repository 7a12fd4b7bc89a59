import { describe, expect, it } from 'vitest';
import { abortedCallError, cancelCauseOf, cancelledCallError, isCancelCause } from './cancellation.js';
import { CallCancelledError } from './errors/call-cancelled-error.js';
import { LayerDeadlineError } from './errors/layer-deadline-error.js';
import { ProviderServerError } from './errors/server-error.js';

describe('cancellation', () => {
  it('reads the cause from a code or from the error a cause made, never from text', () => {
    expect(cancelCauseOf('layer_deadline')).toBe('layer_deadline');
    expect(cancelCauseOf('cancelled')).toBe('cancelled');
    expect(cancelCauseOf(new LayerDeadlineError(100))).toBe('layer_deadline');
    // Text that merely mentions a deadline is a cancel: the cause is a code, not a phrase.
    expect(cancelCauseOf('the layer deadline passed')).toBe('cancelled');
    expect(cancelCauseOf(undefined)).toBe('cancelled');
    expect(isCancelCause('layer_deadline')).toBe(true);
    expect(isCancelCause('deadline')).toBe(false);
  });

  it('makes each cause its own call error and code', () => {
    expect(cancelledCallError('cancelled').toRecord()).toMatchObject({
      type: 'cancelled',
      code: 'cancelled',
    });
    expect(cancelledCallError('layer_deadline', 250).toRecord()).toEqual({
      message: 'abandoned at the layer deadline (layerTimeoutMs 250)',
      type: 'timeout_error',
      code: 'layer_deadline',
    });
  });

  it('keeps a provider error given as the abort reason', () => {
    const deadline = new LayerDeadlineError(5);
    expect(abortedCallError(deadline)).toBe(deadline);
    const server = new ProviderServerError('x');
    expect(abortedCallError(server)).toBe(server);
    expect(abortedCallError('layer_deadline')).toBeInstanceOf(LayerDeadlineError);
    expect(abortedCallError(new Error('any'))).toBeInstanceOf(CallCancelledError);
  });
});

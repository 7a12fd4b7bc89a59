import { CallCancelledError } from './errors/call-cancelled-error.js';
import { LayerDeadlineError } from './errors/layer-deadline-error.js';
import { ProviderError } from './errors/provider-error.js';
import type { ErrorRecord } from './types.js';

/**
 * Why a call is stopped on purpose, as a code carried from whoever stops it
 * to whoever records it (an abort reason, a pub/sub message), never guessed
 * from an error's text:
 * - `cancelled`: its request was cancelled (`DELETE /v1/jobs/{id}`, a batch
 *   cancelled or expired, a client gone);
 * - `layer_deadline`: its layer's straggler deadline passed without it.
 */
export type CancelCause = 'cancelled' | 'layer_deadline';

/** Every {@link CancelCause}. */
export const CANCEL_CAUSES: readonly CancelCause[] = ['cancelled', 'layer_deadline'];

/** Whether a value is a {@link CancelCause} code. */
export function isCancelCause(value: unknown): value is CancelCause {
  return typeof value === 'string' && (CANCEL_CAUSES as readonly string[]).includes(value);
}

/**
 * The cause an abort reason carries: a cause code, or the error a cause
 * makes (a {@link LayerDeadlineError}); any other reason is a cancel.
 */
export function cancelCauseOf(reason: unknown): CancelCause {
  if (isCancelCause(reason)) return reason;
  if (reason instanceof LayerDeadlineError) return 'layer_deadline';
  return 'cancelled';
}

/** The error a call stopped for `cause` fails with; a deadline says its length when known. */
export function cancelledCallError(cause: CancelCause, layerTimeoutMs?: number): ProviderError {
  return cause === 'layer_deadline'
    ? new LayerDeadlineError(layerTimeoutMs)
    : new CallCancelledError('the request was cancelled');
}

/**
 * The error a call aborted with `reason` fails with: the reason itself when
 * it is already a provider error (a deadline made in process), else the
 * error of the cause it carries.
 */
export function abortedCallError(reason: unknown): ProviderError {
  return reason instanceof ProviderError ? reason : cancelledCallError(cancelCauseOf(reason));
}

/** The error of a cancelled request, on its job object and batch line. */
export function cancelledRequestError(): ErrorRecord {
  return { message: 'the request was cancelled', type: 'cancelled', code: 'cancelled' };
}

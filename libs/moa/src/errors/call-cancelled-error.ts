import { ProviderError } from './provider-error.js';

/** A call aborted on purpose: its request was cancelled, or its layer moved on without it. */
export class CallCancelledError extends ProviderError {
  override readonly name = 'CallCancelledError';
  readonly type = 'cancelled' as const;
  readonly retryable = false;

  constructor(reason: string) {
    super(`call aborted: ${reason}`, { code: 'cancelled' });
  }
}

/** A webhook delivery that did not finish (connect, send, answer) within its time limit. Retried. */
export class WebhookTimeoutError extends Error {
  override readonly name = 'WebhookTimeoutError';

  constructor(readonly timeoutMs: number) {
    super(`timeout after ${timeoutMs} ms`);
  }
}

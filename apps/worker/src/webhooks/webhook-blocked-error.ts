/** A webhook target that is, or resolves to, an address webhooks may not reach. Permanent: never retried. */
export class WebhookBlockedError extends Error {
  override readonly name = 'WebhookBlockedError';

  /**
   * @param host the URL's host
   * @param address the refused address (the host itself when it is a literal)
   * @param reason why, from `blockedAddressReason`: e.g. "10.0.0.5 is a private address (10.0.0.0/8)"
   */
  constructor(
    readonly host: string,
    readonly address: string,
    readonly reason: string,
  ) {
    super(`blocked: ${reason}`);
  }
}

/** A webhook target that resolves to an address webhooks may not reach. Permanent: never retried. */
export class WebhookBlockedError extends Error {
  override readonly name = 'WebhookBlockedError';

  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(
      `webhook target ${host} resolves to ${address}, a private, loopback or link-local address (not in webhooks.allowHosts)`,
    );
  }
}

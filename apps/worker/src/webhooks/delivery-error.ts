import { WebhookBlockedError } from './webhook-blocked-error.js';
import { WebhookTimeoutError } from './webhook-timeout-error.js';

/** Short reasons for the network errors a delivery meets, by Node error code. */
const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ECONNABORTED: 'connection aborted',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
  ENOTFOUND: 'host not found',
  ENODATA: 'host has no address',
  EAI_AGAIN: 'DNS lookup failed (temporary)',
  EAI_FAIL: 'DNS lookup failed',
  HPE_INVALID_CONSTANT: 'invalid HTTP response',
  HPE_INVALID_STATUS: 'invalid HTTP response',
  HPE_HEADER_OVERFLOW: 'HTTP response headers too large',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS certificate does not match the host',
  CERT_HAS_EXPIRED: 'TLS certificate expired',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS certificate is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS certificate chain is self-signed',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS certificate cannot be verified',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'TLS certificate cannot be verified',
};

/**
 * The `error` of a failed delivery attempt on the job object: short, and
 * built only from fixed phrases, the refused host and address, and an error
 * code, never from an error's free text, so the URL's path, query or
 * credentials, the payload and the signing secret cannot leak into it.
 */
export function describeDeliveryError(error: unknown): string {
  if (error instanceof WebhookBlockedError) return `blocked: ${error.reason}`;
  if (error instanceof WebhookTimeoutError) return `timeout after ${error.timeoutMs} ms`;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) {
    if (Object.hasOwn(REASONS, code)) return REASONS[code]!;
    if (/^ERR_TLS_|^ERR_SSL_|CERT/.test(code)) return `TLS error (${code})`;
    return `network error (${code})`;
  }
  return 'network error';
}

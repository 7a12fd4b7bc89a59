import { createHash } from 'node:crypto';

/**
 * SHA-256 (hex) of a parsed JSON request body, as `JSON.stringify` writes it:
 * what tells a retried request from a different one. A client's retry sends
 * the same bytes, so the same key order; a body that only reorders its keys
 * counts as another body, which errs on the side of running it.
 */
export function bodyDigest(body: unknown): string {
  return sha256(JSON.stringify(body));
}

/** SHA-256 of a string, hex. */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}

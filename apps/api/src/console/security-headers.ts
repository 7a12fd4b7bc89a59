/**
 * Headers for the console's own pages: scripts, styles and data only from
 * this origin (no inline code), no framing, no MIME sniffing, no referrer.
 * bull-board serves its own UI and does not get these.
 */
export function securityHeaders(): Record<string, string> {
  return {
    'content-security-policy':
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
      "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}

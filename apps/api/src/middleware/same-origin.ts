import type { Request } from 'express';

/**
 * Where a browser request comes from, as its headers say: `same-origin`
 * (this server's own pages), `cross-site` (another origin), or `unknown`
 * (no `Sec-Fetch-Site` nor `Origin`, or `Sec-Fetch-Site: none` for a request
 * the user made directly). `Origin` is compared with this server's origin as
 * Express sees it (scheme and host), so behind a proxy only when
 * `MOA_TRUST_PROXY` trusts it.
 */
export function requestSite(request: Request): 'same-origin' | 'cross-site' | 'unknown' {
  const fetchSite = request.get('sec-fetch-site');
  if (fetchSite !== undefined) {
    if (fetchSite === 'same-origin') return 'same-origin';
    return fetchSite === 'none' ? 'unknown' : 'cross-site';
  }
  const origin = request.get('origin');
  if (origin === undefined) return 'unknown';
  return origin === `${request.protocol}://${request.get('host') ?? ''}` ? 'same-origin' : 'cross-site';
}

/** Methods that change nothing, which need no same-origin check. */
export const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS']);

import { SESSION_TTL_SECONDS } from './sessions.js';

/** The cookie that carries a console session id (never a key). */
export const CONSOLE_COOKIE = 'moa_console_session';

/** The value of one cookie in a `Cookie` header, or undefined (a malformed encoding counts as absent). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const separator = part.indexOf('=');
    if (separator === -1 || part.slice(0, separator).trim() !== name) continue;
    const raw = part.slice(separator + 1).trim();
    try {
      return decodeURIComponent(raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * A `Set-Cookie` value for a session id: HttpOnly, SameSite=Strict, Path=/,
 * Secure over HTTPS (including behind a proxy that `MOA_TRUST_PROXY` trusts).
 * An empty value with `maxAgeSeconds: 0` clears it.
 */
export function sessionCookie(value: string, options: { secure: boolean; maxAgeSeconds?: number }): string {
  const attributes = [
    `${CONSOLE_COOKIE}=${encodeURIComponent(value)}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${options.maxAgeSeconds ?? SESSION_TTL_SECONDS}`,
  ];
  if (options.secure) attributes.push('Secure');
  return attributes.join('; ');
}

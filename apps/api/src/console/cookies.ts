/** The cookie that carries an operator's API key for the console and bull-board. */
export const CONSOLE_COOKIE = 'moa_console_key';

/** How long a console login lasts, in seconds (12 hours). */
export const CONSOLE_COOKIE_MAX_AGE_SECONDS = 12 * 3600;

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

/** A `Set-Cookie` value for the console key: HttpOnly, SameSite=Strict, Secure over HTTPS. */
export function consoleCookie(value: string, options: { secure: boolean; maxAgeSeconds: number }): string {
  const attributes = [
    `${CONSOLE_COOKIE}=${encodeURIComponent(value)}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${options.maxAgeSeconds}`,
  ];
  if (options.secure) attributes.push('Secure');
  return attributes.join('; ');
}

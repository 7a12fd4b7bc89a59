/** The URL prefixes the console owns: its page and JSON, and bull-board. */
export const CONSOLE_PREFIXES = ['/console', '/admin/queues'] as const;

/** The login form, its stylesheet and logout: reachable without a key. */
export const OPEN_CONSOLE_PATHS = new Set(['/console/login', '/console/logout', '/console/console.css']);

/** Whether a request path belongs to the console (`/console`, `/admin/queues` or below). */
export function isConsolePath(path: string): boolean {
  return CONSOLE_PREFIXES.some((prefix) => path === prefix || path.startsWith(`${prefix}/`));
}

/**
 * Where to go after logging in: a console path of this server, or `/console`.
 * Anything else (another host, `//evil`, a backslash trick) is ignored, so the
 * login form is no open redirect.
 */
export function safeNextPath(next: unknown): string {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || /[\\\s]/.test(next)) {
    return '/console';
  }
  const path = next.split(/[?#]/, 1)[0] ?? '';
  return isConsolePath(path) && !OPEN_CONSOLE_PATHS.has(path) ? next : '/console';
}

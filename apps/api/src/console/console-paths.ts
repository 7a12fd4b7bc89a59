/** Where bull-board is served: admin keys only. */
export const BULL_BOARD_PATH = '/admin/queues';

/** The URL prefixes the console owns: its page and JSON, and bull-board. */
export const CONSOLE_PREFIXES = ['/console', BULL_BOARD_PATH] as const;

/** The console's login form, its stylesheet and logout: reachable without a key. */
export const OPEN_CONSOLE_PATHS: ReadonlySet<string> = new Set([
  '/console/login',
  '/console/logout',
  '/console/console.css',
]);

/** Whether a path is `prefix` itself or below it (exact case: routes are case-sensitive). */
function isUnder(path: string, prefix: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

/** Whether a request path belongs to the console (`/console`, `/admin/queues` or below). */
export function isConsolePath(path: string): boolean {
  return CONSOLE_PREFIXES.some((prefix) => isUnder(path, prefix));
}

/** Whether a path is bull-board's (admin keys only). */
export function isAdminPath(path: string): boolean {
  return isUnder(path, BULL_BOARD_PATH);
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

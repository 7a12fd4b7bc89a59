import { fileURLToPath } from 'node:url';

/**
 * `apps/api/public/console`: the console's static files. Resolved from this
 * module's URL, so it is the same directory whether the API runs from
 * `src/console/` (tests, tsx) or from the compiled `dist/console/`.
 */
export const CONSOLE_PUBLIC_DIR = fileURLToPath(new URL('../../public/console/', import.meta.url));

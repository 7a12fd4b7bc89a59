import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import express, { Router } from 'express';
import { methodNotAllowed } from '../middleware/error-handler.js';
import { consoleCookie, CONSOLE_COOKIE_MAX_AGE_SECONDS } from './cookies.js';
import { safeNextPath } from './console-paths.js';
import { createKeyCheck } from '../key-check.js';
import { CONSOLE_PUBLIC_DIR } from './public-dir.js';
import { securityHeaders } from './security-headers.js';

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character);
}

/**
 * `GET /console/login` (the form), `POST /console/login` (checks the key,
 * sets the HttpOnly SameSite=Strict `moa_console_key` cookie and goes back to
 * the console) and `POST /console/logout` (clears it). Without configured
 * keys there is nothing to log in to, and the form redirects to the console.
 */
export function loginRoutes(apiKeys: string[]): Router {
  const router = Router();
  const check = createKeyCheck(apiKeys);
  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });

  router
    .route('/console/login')
    .get(async (request, response) => {
      const next = safeNextPath(request.query.next);
      if (apiKeys.length === 0) {
        response.redirect(303, next);
        return;
      }
      const template = await readFile(join(CONSOLE_PUBLIC_DIR, 'login.html'), 'utf8');
      const failed = request.query.failed === '1';
      const page = template
        .replace('__NEXT__', escapeHtml(next))
        .replace(
          '<!--login-error-->',
          failed ? '<p class="login-error" role="alert">That key is not valid. Try again.</p>' : '',
        );
      response
        .status(failed ? 401 : 200)
        .set(securityHeaders())
        .type('html')
        .send(page);
    })
    .post(form, (request, response) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const next = safeNextPath(body.next);
      if (apiKeys.length === 0) {
        response.redirect(303, next);
        return;
      }
      const key = typeof body.key === 'string' ? body.key.trim() : '';
      if (key === '' || !check(key)) {
        response.redirect(303, `/console/login?failed=1&next=${encodeURIComponent(next)}`);
        return;
      }
      response.set(
        'set-cookie',
        consoleCookie(key, { secure: request.secure, maxAgeSeconds: CONSOLE_COOKIE_MAX_AGE_SECONDS }),
      );
      response.redirect(303, next);
    })
    .all(methodNotAllowed(['GET', 'POST']));

  router
    .route('/console/logout')
    .post((request, response) => {
      response.set('set-cookie', consoleCookie('', { secure: request.secure, maxAgeSeconds: 0 }));
      response.redirect(303, '/console/login');
    })
    .all(methodNotAllowed(['POST']));

  return router;
}

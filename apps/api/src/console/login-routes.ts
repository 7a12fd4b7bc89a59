import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import express from 'express';
import type { AuthThrottle } from '../auth-throttle.js';
import type { Keyring } from '../keyring.js';
import { clientAddress } from '../middleware/access-gate.js';
import { methodNotAllowed } from '../middleware/error-handler.js';
import { requestSite } from '../middleware/same-origin.js';
import { strictRouter } from '../strict-router.js';
import { CONSOLE_COOKIE, readCookie, sessionCookie } from './cookies.js';
import { safeNextPath } from './console-paths.js';
import { CONSOLE_PUBLIC_DIR } from './public-dir.js';
import { securityHeaders } from './security-headers.js';
import type { SessionStore } from './sessions.js';

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

/** What the login routes need. */
export interface LoginRouteDependencies {
  keyring: Keyring;
  sessions: SessionStore;
  throttle: AuthThrottle;
}

/**
 * `GET /console/login` (the form), `POST /console/login` (exchanges a valid
 * key for an opaque session id in an HttpOnly SameSite=Strict cookie) and
 * `POST /console/logout` (deletes the session). Wrong keys count toward the
 * same per-address throttle as the API's. Without configured keys there is
 * nothing to log in to, and the form sends the browser to the console.
 */
export function loginRoutes(dependencies: LoginRouteDependencies) {
  const { keyring, sessions, throttle } = dependencies;
  const router = strictRouter();
  const form = express.urlencoded({ extended: false, limit: '8kb', parameterLimit: 10 });
  const page = async (status: number, next: string, message: string) => {
    const template = await readFile(join(CONSOLE_PUBLIC_DIR, 'login.html'), 'utf8');
    return {
      status,
      html: template
        .replace('__NEXT__', escapeHtml(next))
        .replace(
          '<!--login-error-->',
          message ? `<p class="login-error" role="alert">${escapeHtml(message)}</p>` : '',
        ),
    };
  };

  router
    .route('/console/login')
    .get(async (request, response) => {
      const next = safeNextPath(request.query.next);
      if (keyring.size === 0) {
        response.redirect(303, next);
        return;
      }
      const failed = request.query.failed === '1';
      const { status, html } = await page(
        failed ? 401 : 200,
        next,
        failed ? 'That key is not valid. Try again.' : '',
      );
      response.status(status).set(securityHeaders()).type('html').send(html);
    })
    .post(form, async (request, response) => {
      const body = (request.body ?? {}) as Record<string, unknown>;
      const next = safeNextPath(body.next);
      if (keyring.size === 0) {
        response.redirect(303, next);
        return;
      }
      // A login posted from another site would log the browser in under the attacker's key.
      if (requestSite(request) === 'cross-site') {
        const { html } = await page(403, next, 'This login came from another site and was refused.');
        response.status(403).set(securityHeaders()).type('html').send(html);
        return;
      }
      const address = clientAddress(request);
      const waitSeconds = await throttle.blockedFor(address);
      if (waitSeconds > 0) {
        const { html } = await page(429, next, `Too many failed attempts. Try again in ${waitSeconds} s.`);
        response
          .status(429)
          .set({ ...securityHeaders(), 'retry-after': String(waitSeconds) })
          .type('html')
          .send(html);
        return;
      }
      const given = typeof body.key === 'string' ? body.key.trim() : '';
      const key = given === '' ? undefined : keyring.identify(given);
      if (!key) {
        await throttle.recordFailure(address);
        response.redirect(303, `/console/login?failed=1&next=${encodeURIComponent(next)}`);
        return;
      }
      const sessionId = await sessions.create({ keyDigest: keyring.digestOf(key) });
      response.set('set-cookie', sessionCookie(sessionId, { secure: request.secure }));
      response.redirect(303, next);
    })
    .all(methodNotAllowed(['GET', 'POST']));

  router
    .route('/console/logout')
    .post(async (request, response) => {
      const sessionId = readCookie(request.get('cookie'), CONSOLE_COOKIE);
      // Logout revokes the session itself, not only the browser's copy of its id.
      if (sessionId) await sessions.remove(sessionId);
      response.set('set-cookie', sessionCookie('', { secure: request.secure, maxAgeSeconds: 0 }));
      response.redirect(303, '/console/login');
    })
    .all(methodNotAllowed(['POST']));

  return router;
}

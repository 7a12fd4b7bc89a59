import type { Express } from 'express';
import request from 'supertest';

/** Keys of the security suites: two tenants and an admin, each at least 20 characters. */
export const KEYS = {
  alpha: 'alpha-key-0123456789abcdef',
  beta: 'beta-key-0123456789abcdef',
  admin: 'admin-key-0123456789abcdef',
} as const;

/** The app's key options for {@link KEYS}: tenants `alpha` and `beta`, admin `ops`. */
export const KEY_OPTIONS = {
  apiKeys: [`alpha:${KEYS.alpha}`, `beta:${KEYS.beta}`],
  adminKeys: [`ops:${KEYS.admin}`],
};

/**
 * Requests to `app` with the bearer key of `who`. `app` is read at each call,
 * so a suite may pass a getter for an app it starts in `beforeAll`.
 */
export function asTenant(app: () => Express, who: keyof typeof KEYS) {
  const authorized = (test: request.Test) => test.set('authorization', `Bearer ${KEYS[who]}`);
  return {
    get: (path: string) => authorized(request(app()).get(path)),
    post: (path: string) => authorized(request(app()).post(path)),
    delete: (path: string) => authorized(request(app()).delete(path)),
  };
}

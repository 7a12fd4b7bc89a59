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

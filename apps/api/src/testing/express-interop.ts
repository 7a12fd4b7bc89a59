import { createRequire } from 'node:module';

/*
 * Test-only workaround; the Express test files import this module first.
 *
 * The root vitest.config.ts lists `import` in `ssr.resolve.conditions`, and
 * vitest passes those conditions to the test process as `--conditions`. Node's
 * `require` then resolves `is-promise` to its ESM build, so `router` (Express
 * 5) gets a module namespace instead of a function and every route answers
 * 500 "isPromise is not a function". This puts the CommonJS build in the
 * require cache under the path that `require` resolves to. It does nothing
 * when the conditions are right; delete it once the root config drops
 * `import` from `ssr.resolve.conditions`.
 */
const requireFromRouter = createRequire(createRequire(import.meta.url).resolve('router'));
const resolved = requireFromRouter.resolve('is-promise');
if (resolved.endsWith('.mjs')) {
  const commonJs = resolved.replace(/\.mjs$/, '.js');
  requireFromRouter(commonJs);
  requireFromRouter.cache[resolved] = requireFromRouter.cache[commonJs];
}

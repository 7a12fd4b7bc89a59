import { defineConfig } from 'vitest/config';

// Workspace packages export their TypeScript sources under the "development"
// condition, so tests run against src/ without a build step. Vitest hands
// these conditions to Node as --conditions flags too, so they must not
// include "import": CommonJS dependencies would then require() ESM builds.
export default defineConfig({
  resolve: { conditions: ['development', 'node'] },
  ssr: { resolve: { conditions: ['development', 'node'] } },
  test: {
    include: ['{apps,libs,tools,bench,scripts}/**/*.test.ts', 'tests/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    globalSetup: ['tools/test-support/src/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});

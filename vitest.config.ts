import { defineConfig } from 'vitest/config';

// Workspace packages export their TypeScript sources under the "development"
// condition, so tests run against src/ without a build step.
export default defineConfig({
  resolve: { conditions: ['development', 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: ['development', 'node', 'import', 'default'] } },
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

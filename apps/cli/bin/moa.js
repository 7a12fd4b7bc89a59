#!/usr/bin/env node
// The `moa` launcher, committed as plain JavaScript so that `npx moa` works on
// a fresh clone right after `npm ci`: it runs the build when there is one,
// else the TypeScript sources through tsx, with the workspace packages
// resolved to their sources too (their "development" export condition).
import { existsSync } from 'node:fs';
import { register } from 'node:module';

const built = new URL('../dist/main.js', import.meta.url);
if (existsSync(built) && process.env.MOA_CLI_FROM_SOURCE !== '1') {
  await import(built.href);
} else {
  register('./development-conditions.js', import.meta.url);
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  await import(new URL('../src/main.ts', import.meta.url).href);
}

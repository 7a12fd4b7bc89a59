/**
 * `npm run bench`: every scenario in turn, each with its own Redis and
 * processes. Results land in bench/results/*.json; docs/benchmarks.md
 * quotes them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { REPOSITORY_ROOT } from '@moa-queue/test-support';

const scenarios = [
  'bench/overhead.ts',
  'bench/throughput.ts',
  'bench/batch-memory.ts',
  'bench/redis-memory.ts',
  'bench/followers.ts',
  'bench/context-fit.ts',
].filter((path) => existsSync(`${REPOSITORY_ROOT}/${path}`));
let failed = 0;
for (const scenario of scenarios) {
  console.log(`\n=== ${scenario}`);
  const result = spawnSync(process.execPath, ['--conditions=development', '--import', 'tsx', scenario], {
    cwd: REPOSITORY_ROOT,
    stdio: 'inherit',
  });
  if (result.status !== 0) failed += 1;
}
process.exit(failed === 0 ? 0 : 1);

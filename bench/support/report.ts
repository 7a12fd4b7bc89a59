import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPOSITORY_ROOT } from '@moa-queue/test-support';

/** The machine a result was measured on, stored with every result. */
export function machine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    at: new Date().toISOString(),
  };
}

/** Writes `bench/results/<name>.json` and returns its path. */
export function writeResult(name: string, result: unknown): string {
  const directory = join(REPOSITORY_ROOT, 'bench', 'results');
  mkdirSync(directory, { recursive: true });
  const path = join(directory, `${name}.json`);
  writeFileSync(path, `${JSON.stringify({ machine: machine(), ...(result as object) }, null, 2)}\n`);
  return path;
}

/** Prints rows as an aligned text table. */
export function printTable(rows: Record<string, string | number>[]): void {
  if (rows.length === 0) return;
  const headers = Object.keys(rows[0]!);
  const widths = headers.map((header) =>
    Math.max(header.length, ...rows.map((row) => String(row[header]).length)),
  );
  const line = (values: string[]) => values.map((value, index) => value.padStart(widths[index]!)).join('  ');
  console.log(line(headers));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const row of rows) console.log(line(headers.map((header) => String(row[header]))));
}

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, expect } from 'vitest';
import {
  ROOT,
  API_ENV,
  API_GET_PATHS,
  DEFAULT_PORT,
  WORKER_ENV,
  exists,
  readText,
  urlsIn,
  workspaceClosure,
  workspaceDirectories,
} from './support.js';

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  image: string;
  name: string | undefined;
  instructions: Instruction[];
}

/** Dockerfile instructions, with `\` continuations joined and comments dropped. */
function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.startsWith('#')) continue; // comment inside a continuation
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  const stages: Stage[] = [];
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    if (instruction.keyword === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      stages.push({ image: match?.[1] ?? '', name: match?.[2], instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

const stages = parseDockerfile(readText('Dockerfile'));
const runtime = stages.at(-1)!;
const build = stages.find((stage) => stage.name === 'build');
const args = (stage: Stage, keyword: string) =>
  stage.instructions
    .filter((instruction) => instruction.keyword === keyword)
    .map((instruction) => instruction.args);
/** A JSON (exec form) argument list. */
const execForm = (text: string) => JSON.parse(text) as string[];

describe('Dockerfile', () => {
  it('builds from node:24 in every stage, with a `build` stage and the runtime stage last', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.image).toMatch(/^node:24(-slim)?$/);
    expect(build).toBeDefined();
    expect(runtime.name).toBe('runtime');
  });

  it('builds with npm ci and npm run build, and installs only production dependencies in the runtime stage', () => {
    expect(args(build!, 'RUN').some((run) => /\bnpm ci\b/.test(run) && !run.includes('--omit=dev'))).toBe(
      true,
    );
    expect(args(build!, 'RUN').some((run) => run.includes('npm run build'))).toBe(true);
    expect(args(runtime, 'RUN').some((run) => /\bnpm ci\b.*--omit=dev/.test(run))).toBe(true);
    expect(args(runtime, 'ENV').join(' ')).toMatch(/\bNODE_ENV=production\b/);
  });

  it('copies every workspace package.json and the lock file before npm ci (npm ci needs all of them)', () => {
    for (const stage of [build!, runtime]) {
      const npmCi = stage.instructions.findIndex(
        (instruction) => instruction.keyword === 'RUN' && instruction.args.includes('npm ci'),
      );
      const copied = stage.instructions
        .slice(0, npmCi)
        .filter((instruction) => instruction.keyword === 'COPY')
        .flatMap((instruction) => instruction.args.split(/\s+/).slice(0, -1));
      expect(copied).toContain('package.json');
      expect(copied).toContain('package-lock.json');
      for (const directory of workspaceDirectories()) expect(copied).toContain(`${directory}/package.json`);
      for (const file of copied.filter((entry) => !entry.startsWith('--'))) expect(exists(file)).toBe(true);
    }
  });

  it('copies the built dist/ of the API, the worker and every workspace they depend on', () => {
    const copiedDist = args(runtime, 'COPY')
      .filter((copy) => copy.startsWith('--from=build'))
      .map((copy) => copy.split(/\s+/).at(-1));
    const needed = new Set([...workspaceClosure('apps/api'), ...workspaceClosure('apps/worker')]);
    expect(needed).toContain('libs/moa');
    for (const directory of needed) expect(copiedDist).toContain(`${directory}/dist`);
  });

  it('copies the runtime assets of those workspaces too (every folder but src, dist and node_modules)', () => {
    const copied = args(runtime, 'COPY')
      .filter((copy) => copy.startsWith('--from=build'))
      .map((copy) => copy.split(/\s+/).at(-1));
    const needed = new Set([...workspaceClosure('apps/api'), ...workspaceClosure('apps/worker')]);
    for (const directory of needed) {
      for (const entry of readdirSync(join(ROOT, directory), { withFileTypes: true })) {
        if (!entry.isDirectory() || ['src', 'dist', 'node_modules'].includes(entry.name)) continue;
        expect(copied, `${directory}/${entry.name}`).toContain(`${directory}/${entry.name}`);
      }
    }
  });

  it('runs as the non-root node user under tini, and starts the API by default', () => {
    const users = args(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    expect(args(runtime, 'RUN').some((run) => /apt-get install[^&]*\btini\b/.test(run))).toBe(true);
    expect(execForm(args(runtime, 'ENTRYPOINT').at(-1)!)).toEqual(['/usr/bin/tini', '--']);
    const command = execForm(args(runtime, 'CMD').at(-1)!);
    expect(command).toEqual(['node', 'apps/api/dist/main.js']);
    expect(exists('apps/api/src/main.ts')).toBe(true);
    expect(exists('apps/worker/src/main.ts')).toBe(true);
  });

  it('exposes the API and worker metrics ports and listens on 0.0.0.0', () => {
    const exposed = args(runtime, 'EXPOSE').flatMap((expose) => expose.split(/\s+/));
    expect(exposed).toContain(String(DEFAULT_PORT.api));
    expect(exposed).toContain(String(DEFAULT_PORT.worker));
    expect(args(runtime, 'ENV').join(' ')).toMatch(/\bHOST=0\.0\.0\.0\b/);
  });

  it('sets only environment variables that the code reads', () => {
    const names = args(runtime, 'ENV').flatMap((env) =>
      [...env.matchAll(/([A-Z][A-Z0-9_]*)=/g)].map((m) => m[1]),
    );
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(API_ENV.has(name!) || WORKER_ENV.has(name!), name).toBe(true);
  });

  it("has a HEALTHCHECK on the API's /healthz at its port", () => {
    const healthcheck = args(runtime, 'HEALTHCHECK').at(-1);
    expect(healthcheck).toBeDefined();
    const command = execForm(healthcheck!.slice(healthcheck!.indexOf('CMD') + 3).trim()).join(' ');
    expect(command).toContain('process.env.PORT');
    const urls = urlsIn(command.replace(/' \+ \(process\.env\.PORT \|\| (\d+)\) \+ '/, '$1'));
    expect(urls).toHaveLength(1);
    expect(urls[0]!.port).toBe(DEFAULT_PORT.api);
    expect(API_GET_PATHS).toContain(urls[0]!.path);
  });
});

describe('.dockerignore', () => {
  const patterns = readText('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

  it('keeps installed and built output, VCS data and local secrets out of the build context', () => {
    for (const pattern of [
      '**/node_modules',
      '**/dist',
      '**/*.tsbuildinfo',
      '.git',
      '.env',
      'coverage',
      'test-artifacts',
    ]) {
      expect(patterns).toContain(pattern);
    }
  });

  it('does not exclude anything the Dockerfile copies', () => {
    const copied = stages
      .flatMap((stage) => args(stage, 'COPY'))
      .filter((copy) => !copy.startsWith('--from'))
      .flatMap((copy) => copy.split(/\s+/).slice(0, -1));
    for (const source of copied) {
      const topLevel = source.split('/')[0]!;
      expect(patterns, source).not.toContain(source);
      expect(patterns, source).not.toContain(topLevel);
    }
  });
});

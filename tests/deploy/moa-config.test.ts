import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseMoaConfig } from '@moa-queue/moa';
import { describe, it, expect } from 'vitest';
import { ROOT, exists, readText, readYaml } from './support.js';

const files = [
  ...readdirSync(join(ROOT, 'deploy/config'))
    .filter((file) => /\.ya?ml$/.test(file))
    .map((file) => `deploy/config/${file}`),
  'deploy/k8s/base/moa.yaml',
];

describe('MoA config files under deploy/', () => {
  it('include the compose config and the simulation config', () => {
    expect(files).toContain('deploy/config/moa.yaml');
    expect(files).toContain('deploy/config/moa.simulate.yaml');
  });

  it.each(files)('%s is valid against the config schema (parseMoaConfig)', (file) => {
    const config = parseMoaConfig(readYaml(file), file);
    expect(config.presets[config.defaultPreset]).toBeDefined();
  });

  it.each(files)('%s carries no secret: keys are named by apiKeyEnv only', (file) => {
    const text = readText(file);
    expect(text).not.toMatch(/apiKey:/);
    expect(text).not.toMatch(/\b(sk|gsk)-[A-Za-z0-9]{8,}/);
    expect(text).not.toMatch(/whsec_[A-Za-z0-9+/]{8,}/);
  });

  it('prices every model used by a preset in the compose and Kubernetes configs', () => {
    for (const file of ['deploy/config/moa.yaml', 'deploy/k8s/base/moa.yaml']) {
      const config = parseMoaConfig(readYaml(file), file);
      for (const preset of Object.values(config.presets)) {
        for (const agent of [...preset.layers.flat(), preset.aggregator]) {
          expect(config.models[agent.model], `${file}: ${preset.name}: ${agent.model}`).toBeDefined();
        }
      }
    }
  });
});

describe('docs/operations.md', () => {
  const docs = readText('docs/operations.md');

  it('keeps the marker for the measured Redis memory per job', () => {
    expect(docs).toContain('<!-- memory-per-job -->');
  });

  it('names files that exist', () => {
    const paths = [...docs.matchAll(/`((?:deploy|docs|tools|apps|libs)\/[A-Za-z0-9_./-]+)`/g)].map(
      (match) => match[1]!,
    );
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths) {
      expect(exists(path), path).toBe(true);
    }
  });
});

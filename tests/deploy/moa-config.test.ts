import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BUILT_IN_MODELS, BUILT_IN_PRESETS, parseMoaConfig } from '@moa-queue/moa';
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

describe('presets and models of the deploy configs', () => {
  it.each(files)('%s keeps the built-in context window of every built-in model it re-prices', (file) => {
    const config = parseMoaConfig(readYaml(file), file);
    for (const [modelId, builtIn] of Object.entries(BUILT_IN_MODELS)) {
      expect(config.models[modelId]?.contextWindow, `${file}: ${modelId}`).toBe(builtIn.contextWindow);
    }
  });

  it.each(files)(
    '%s needs at least half the proposers of every layer (rounded up) in each preset',
    (file) => {
      const config = parseMoaConfig(readYaml(file), file);
      for (const preset of Object.values(config.presets)) {
        for (const layer of preset.layers) {
          expect(preset.minProposers, `${file}: ${preset.name}`).toBeGreaterThanOrEqual(
            Math.ceil(layer.length / 2),
          );
        }
      }
    },
  );

  it('keeps every built-in preset, moa-gpt-4o included, and its reference format', () => {
    for (const file of files) {
      const config = parseMoaConfig(readYaml(file), file);
      expect(Object.keys(config.presets), file).toEqual(
        expect.arrayContaining(Object.keys(BUILT_IN_PRESETS)),
      );
      for (const preset of Object.values(config.presets)) expect(preset.referenceFormat).toBe('tagged');
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

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it, expect } from 'vitest';
import { builtInConfig, PRESET_CREATED_DEFAULT } from './built-in-config.js';
import { ConfigError } from './config-error.js';
import {
  contextWindowOf,
  loadMoaConfig,
  parseMoaConfig,
  priceOf,
  quotasOf,
  resolvePreset,
} from './load-config.js';
import { DEFAULT_REFERENCE_PROMPT, PAPER_REFERENCE_PROMPT } from './references.js';

const QWEN = 'together/Qwen/Qwen2.5-72B-Instruct-Turbo';

/** Runs `load`, expects a ConfigError at `path`, and checks that the message names the source and the field. */
function expectConfigError(load: () => unknown, path: string, source = 'config'): ConfigError {
  let caught: unknown;
  try {
    load();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const error = caught as ConfigError;
  expect(error.name).toBe('ConfigError');
  expect(error.path).toBe(path);
  expect(error.source).toBe(source);
  expect(error.message).toContain(`Invalid MoA config (${source}): ${path === '' ? '' : `${path}: `}`);
  return error;
}

describe('ConfigError', () => {
  it('names the source and the field, and lists further issues', () => {
    const error = new ConfigError('moa.yaml', 'presets.moa.aggregator.model', 'required', {
      moreIssues: [{ path: 'defaultPreset', reason: 'required' }],
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe(
      'Invalid MoA config (moa.yaml): presets.moa.aggregator.model: required\n  defaultPreset: required',
    );
    expect(error.issues).toHaveLength(2);
  });
});

describe('parseMoaConfig', () => {
  it('returns the built-ins for an empty config', () => {
    expect(parseMoaConfig({})).toEqual(builtInConfig());
    expect(parseMoaConfig(null)).toEqual(builtInConfig());
    expect(parseMoaConfig(undefined)).toEqual(builtInConfig());
  });

  it('merges a provider entry field by field over the built-in of the same name', () => {
    const config = parseMoaConfig({
      providers: {
        ollama: { baseURL: 'http://gpu-box:11434/v1' },
        together: { requestsPerMinute: 600, concurrency: 8 },
      },
    });
    expect(config.providers.ollama).toEqual({
      name: 'ollama',
      baseURL: 'http://gpu-box:11434/v1',
      concurrency: 32,
      timeoutMs: 120_000,
      maxAttempts: 3,
    });
    expect(config.providers.together).toEqual({
      name: 'together',
      baseURL: 'https://api.together.xyz/v1',
      apiKeyEnv: 'TOGETHER_API_KEY',
      concurrency: 8,
      requestsPerMinute: 600,
      timeoutMs: 120_000,
      maxAttempts: 3,
    });
    expect(config.providers.openai).toEqual(builtInConfig().providers.openai);
  });

  it('adds a new provider with defaults filled in', () => {
    const config = parseMoaConfig({
      providers: { vllm: { baseURL: 'http://10.0.0.5:8000/v1', apiKeyEnv: 'VLLM_KEY' } },
    });
    expect(config.providers.vllm).toEqual({
      name: 'vllm',
      baseURL: 'http://10.0.0.5:8000/v1',
      apiKeyEnv: 'VLLM_KEY',
      concurrency: 32,
      timeoutMs: 120_000,
      maxAttempts: 3,
    });
  });

  it('requires a baseURL for a provider that is not built in', () => {
    const error = expectConfigError(
      () => parseMoaConfig({ providers: { vllm: { apiKeyEnv: 'VLLM_KEY' } } }),
      'providers.vllm.baseURL',
    );
    expect(error.message).toMatch(/required/);
  });

  it('adds and replaces presets and models by key, filling in defaults', () => {
    const config = parseMoaConfig({
      models: { 'together/Qwen/Qwen2.5-72B-Instruct-Turbo': { inputCostPerMTok: 1, outputCostPerMTok: 2 } },
      presets: {
        moa: {
          layers: [[{ model: QWEN }, { model: 'openai/gpt-4o-mini', temperature: 0 }]],
          aggregator: { model: QWEN },
        },
        fast: {
          description: 'one layer of one model',
          layers: [[{ model: 'groq/llama-3.1-8b-instant', maxTokens: 64, systemPrompt: 'Be terse.' }]],
          aggregator: { model: 'groq/llama-3.3-70b-versatile' },
          layerTimeoutMs: 5000,
          referencePrompt: 'Combine.',
        },
      },
    });
    expect(config.models[QWEN]).toEqual({ inputCostPerMTok: 1, outputCostPerMTok: 2 });
    expect(config.models['openai/gpt-4o']).toEqual({
      inputCostPerMTok: 2.5,
      outputCostPerMTok: 10,
      contextWindow: 128_000,
    });
    expect(config.presets.moa).toEqual({
      name: 'moa',
      created: PRESET_CREATED_DEFAULT,
      layers: [
        [
          { model: QWEN, temperature: 0.7, maxTokens: 512 },
          { model: 'openai/gpt-4o-mini', temperature: 0, maxTokens: 512 },
        ],
      ],
      aggregator: { model: QWEN, temperature: 0.7, maxTokens: 2048 },
      minProposers: 1,
      layerTimeoutMs: 0,
      referencePrompt: DEFAULT_REFERENCE_PROMPT,
      referenceFormat: 'tagged',
    });
    expect(config.presets.fast).toEqual({
      name: 'fast',
      description: 'one layer of one model',
      created: PRESET_CREATED_DEFAULT,
      layers: [
        [{ model: 'groq/llama-3.1-8b-instant', temperature: 0.7, maxTokens: 64, systemPrompt: 'Be terse.' }],
      ],
      aggregator: { model: 'groq/llama-3.3-70b-versatile', temperature: 0.7, maxTokens: 2048 },
      minProposers: 1,
      layerTimeoutMs: 5000,
      referencePrompt: 'Combine.',
      referenceFormat: 'tagged',
    });
    expect(Object.keys(config.presets)).toEqual(['moa', 'moa-lite', 'self-moa', 'moa-gpt-4o', 'fast']);
  });

  it("takes a preset's referenceFormat, with the reference implementation's text as the paper default", () => {
    const layers = [[{ model: QWEN }]];
    const config = parseMoaConfig({
      presets: {
        paper: { layers, aggregator: { model: QWEN }, referenceFormat: 'paper' },
        ablation: {
          layers,
          aggregator: { model: QWEN },
          referenceFormat: 'paper',
          referencePrompt: 'Combine.',
        },
        tagged: { layers, aggregator: { model: QWEN }, referenceFormat: 'tagged' },
      },
    });
    expect(config.presets.paper).toMatchObject({
      referenceFormat: 'paper',
      referencePrompt: PAPER_REFERENCE_PROMPT,
    });
    expect(config.presets.ablation).toMatchObject({ referenceFormat: 'paper', referencePrompt: 'Combine.' });
    expect(config.presets.tagged).toMatchObject({
      referenceFormat: 'tagged',
      referencePrompt: DEFAULT_REFERENCE_PROMPT,
    });
    expectConfigError(
      () =>
        parseMoaConfig({ presets: { x: { layers, aggregator: { model: QWEN }, referenceFormat: 'xml' } } }),
      'presets.x.referenceFormat',
    );
  });

  it("takes a preset's created as a date or epoch seconds, with a fixed default", () => {
    const layers = [[{ model: QWEN }]];
    const config = parseMoaConfig({
      presets: {
        dated: { layers, aggregator: { model: QWEN }, created: '2026-01-31' },
        seconds: { layers, aggregator: { model: QWEN }, created: 1_770_000_000 },
        plain: { layers, aggregator: { model: QWEN } },
      },
    });
    expect(config.presets.dated?.created).toBe(Date.UTC(2026, 0, 31) / 1000);
    expect(config.presets.seconds?.created).toBe(1_770_000_000);
    expect(config.presets.plain?.created).toBe(PRESET_CREATED_DEFAULT);
    expect(config.presets.moa?.created).toBe(PRESET_CREATED_DEFAULT);
    expectConfigError(
      () => parseMoaConfig({ presets: { x: { layers, aggregator: { model: QWEN }, created: 'yesterday' } } }),
      'presets.x.created',
    );
  });

  it("takes a model's contextWindow, keeping it apart from its price", () => {
    const config = parseMoaConfig({
      models: {
        'ollama/llama3.1': { inputCostPerMTok: 0, outputCostPerMTok: 0, contextWindow: 8192 },
        'ollama/tiny': { inputCostPerMTok: 0, outputCostPerMTok: 0 },
      },
    });
    expect(config.models['ollama/llama3.1']).toEqual({
      inputCostPerMTok: 0,
      outputCostPerMTok: 0,
      contextWindow: 8192,
    });
    expect(config.models['ollama/tiny']).toEqual({ inputCostPerMTok: 0, outputCostPerMTok: 0 });
    expect(contextWindowOf(config, 'ollama/llama3.1')).toBe(8192);
    expect(contextWindowOf(config, 'ollama/tiny')).toBeUndefined();
    expect(contextWindowOf(config, 'together/Qwen/Qwen2.5-72B-Instruct-Turbo')).toBe(32_768);
    expect(contextWindowOf(config, 'nope/none')).toBeUndefined();
    expect(priceOf(config, 'ollama/llama3.1')).toEqual({ inputCostPerMTok: 0, outputCostPerMTok: 0 });
    for (const contextWindow of [0, 1.5, -1, '8192']) {
      expectConfigError(
        () =>
          parseMoaConfig({
            models: { 'ollama/x': { inputCostPerMTok: 0, outputCostPerMTok: 0, contextWindow } },
          }),
        'models.ollama/x.contextWindow',
      );
    }
  });

  it('merges webhook settings field by field', () => {
    const config = parseMoaConfig({ webhooks: { allowHosts: ['10.0.0.0/8', 'hooks.internal'] } });
    expect(config.webhooks.allowHosts).toEqual(['10.0.0.0/8', 'hooks.internal']);
    expect(config.webhooks.retryHorizonMs).toBe(86_400_000);
    expect(config.webhooks.retryScheduleMs).toHaveLength(7);
  });

  it('reports an unknown provider in a preset', () => {
    const error = expectConfigError(
      () =>
        parseMoaConfig({
          presets: { x: { layers: [[{ model: QWEN }, { model: 'foo/bar' }]], aggregator: { model: QWEN } } },
        }),
      'presets.x.layers.0.1.model',
    );
    expect(error.message).toContain('unknown provider "foo"');
  });

  it('reports an unknown provider of the aggregator and of a price', () => {
    expectConfigError(
      () =>
        parseMoaConfig({ presets: { x: { layers: [[{ model: QWEN }]], aggregator: { model: 'nope/m' } } } }),
      'presets.x.aggregator.model',
    );
    expectConfigError(
      () => parseMoaConfig({ models: { 'nope/m': { inputCostPerMTok: 1, outputCostPerMTok: 1 } } }),
      'models.nope/m',
    );
  });

  it('accepts a preset on a provider the same file adds', () => {
    const config = parseMoaConfig({
      providers: { vllm: { baseURL: 'http://127.0.0.1:8000/v1' } },
      presets: {
        local: { layers: [[{ model: 'vllm/meta-llama/Llama-3.1-8B' }]], aggregator: { model: 'vllm/x' } },
      },
      defaultPreset: 'local',
    });
    expect(resolvePreset(config)?.name).toBe('local');
  });

  it('reports a bad temperature with its path', () => {
    const error = expectConfigError(
      () =>
        parseMoaConfig(
          { presets: { x: { layers: [[{ model: QWEN, temperature: 2.5 }]], aggregator: { model: QWEN } } } },
          'moa.yaml',
        ),
      'presets.x.layers.0.0.temperature',
      'moa.yaml',
    );
    expect(error.message).toMatch(/<=\s*2/);
  });

  it("takes a preset's earlyStop and maxCostUsd, and leaves them unset when absent", () => {
    const config = parseMoaConfig({
      presets: {
        capped: {
          layers: [[{ model: QWEN }]],
          aggregator: { model: QWEN },
          earlyStop: { minAgreement: 0.9 },
          maxCostUsd: 0.05,
        },
        plain: { layers: [[{ model: QWEN }]], aggregator: { model: QWEN } },
      },
    });
    expect(config.presets.capped).toMatchObject({ earlyStop: { minAgreement: 0.9 }, maxCostUsd: 0.05 });
    expect(config.presets.plain).not.toHaveProperty('earlyStop');
    expect(config.presets.plain).not.toHaveProperty('maxCostUsd');
  });

  it('reports a bad earlyStop or maxCostUsd naming the field', () => {
    const preset = (extra: Record<string, unknown>) => ({
      presets: { x: { layers: [[{ model: QWEN }]], aggregator: { model: QWEN }, ...extra } },
    });
    const agreement = expectConfigError(
      () => parseMoaConfig(preset({ earlyStop: { minAgreement: 1.5 } })),
      'presets.x.earlyStop.minAgreement',
    );
    expect(agreement.message).toContain('must be a number from 0 to 1');
    // The config's spelling is camelCase: the snake_case of the HTTP API is refused, and says why.
    const snake = expectConfigError(
      () => parseMoaConfig(preset({ earlyStop: { min_agreement: 0.5 } })),
      'presets.x.earlyStop.minAgreement',
    );
    expect(snake.message).toContain('unknown key "min_agreement"');
    const cost = expectConfigError(() => parseMoaConfig(preset({ maxCostUsd: 0 })), 'presets.x.maxCostUsd');
    expect(cost.message).toContain('must be a number of USD greater than 0');
    expectConfigError(() => parseMoaConfig(preset({ maxCostUsd: '0.05' })), 'presets.x.maxCostUsd');
  });

  it('reports an unknown key by name', () => {
    const error = expectConfigError(
      () => parseMoaConfig({ providers: { together: { concurency: 4 } } }),
      'providers.together.concurency',
    );
    expect(error.message).toContain('unknown key "concurency"');
    expectConfigError(() => parseMoaConfig({ defaultPresets: 'moa' }), 'defaultPresets');
  });

  it('reports a missing required field as required', () => {
    const error = expectConfigError(
      () => parseMoaConfig({ presets: { moa: { layers: [[{ model: QWEN }]] } } }, 'moa.yaml'),
      'presets.moa.aggregator',
      'moa.yaml',
    );
    expect(error.message).toBe('Invalid MoA config (moa.yaml): presets.moa.aggregator: required');
    expectConfigError(
      () => parseMoaConfig({ presets: { moa: { layers: [[{ model: QWEN }]], aggregator: {} } } }),
      'presets.moa.aggregator.model',
    );
  });

  it('reports a defaultPreset that names no preset', () => {
    const error = expectConfigError(() => parseMoaConfig({ defaultPreset: 'missing' }), 'defaultPreset');
    expect(error.message).toContain('unknown preset "missing"');
  });

  it('reports minProposers larger than the smallest layer', () => {
    const error = expectConfigError(
      () =>
        parseMoaConfig({
          presets: {
            x: {
              layers: [
                [{ model: QWEN }, { model: QWEN }, { model: QWEN }],
                [{ model: QWEN }, { model: QWEN }],
              ],
              aggregator: { model: QWEN },
              minProposers: 3,
            },
          },
        }),
      'presets.x.minProposers',
    );
    expect(error.message).toContain('(2)');
  });

  it('reports an invalid provider or preset name', () => {
    expectConfigError(
      () => parseMoaConfig({ providers: { Local: { baseURL: 'http://h/v1' } } }),
      'providers.Local',
    );
    expectConfigError(
      () =>
        parseMoaConfig({ presets: { 'a b': { layers: [[{ model: QWEN }]], aggregator: { model: QWEN } } } }),
      'presets.a b',
    );
  });

  it('reports a file that is not a mapping', () => {
    expectConfigError(() => parseMoaConfig(['moa']), '');
    expectConfigError(() => parseMoaConfig('moa'), '');
  });
});

describe('loadMoaConfig', () => {
  const directory = mkdtempSync(join(tmpdir(), 'moa-config-'));
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  /** Writes a file into the temporary directory and returns its path. */
  function file(name: string, content: string): string {
    const path = join(directory, name);
    writeFileSync(path, content);
    return path;
  }

  it('returns the built-ins without a path', () => {
    expect(loadMoaConfig(undefined)).toEqual(builtInConfig());
    expect(loadMoaConfig('')).toEqual(builtInConfig());
  });

  it('loads a YAML file', () => {
    const path = file(
      'moa.yaml',
      [
        'providers:',
        '  ollama: { baseURL: http://gpu:11434/v1 }',
        'models:',
        '  ollama/llama3.1: { inputCostPerMTok: 0, outputCostPerMTok: 0 }',
        'presets:',
        '  local:',
        '    layers:',
        '      - [ {model: ollama/llama3.1}, {model: ollama/qwen2.5, temperature: 0.2} ]',
        '    aggregator: { model: ollama/llama3.1, maxTokens: 1024 }',
        'defaultPreset: local',
        '',
      ].join('\n'),
    );
    const config = loadMoaConfig(path);
    expect(config.providers.ollama?.baseURL).toBe('http://gpu:11434/v1');
    expect(config.defaultPreset).toBe('local');
    expect(config.presets.local?.layers[0]?.[1]).toEqual({
      model: 'ollama/qwen2.5',
      temperature: 0.2,
      maxTokens: 512,
    });
    expect(config.presets.local?.aggregator.maxTokens).toBe(1024);
    expect(priceOf(config, 'ollama/llama3.1')).toEqual({ inputCostPerMTok: 0, outputCostPerMTok: 0 });
  });

  it('loads a .yml file and an empty YAML file', () => {
    expect(loadMoaConfig(file('moa.yml', 'defaultPreset: moa-lite\n')).defaultPreset).toBe('moa-lite');
    expect(loadMoaConfig(file('empty.yaml', '# nothing yet\n'))).toEqual(builtInConfig());
  });

  it('loads a JSON file', () => {
    const path = file(
      'moa.json',
      JSON.stringify({ providers: { groq: { requestsPerMinute: 30 } }, defaultPreset: 'self-moa' }),
    );
    const config = loadMoaConfig(path);
    expect(config.providers.groq?.requestsPerMinute).toBe(30);
    expect(config.defaultPreset).toBe('self-moa');
  });

  it('sniffs the format of a file with another extension', () => {
    expect(loadMoaConfig(file('moa.conf', '{"defaultPreset": "moa-lite"}')).defaultPreset).toBe('moa-lite');
    expect(loadMoaConfig(file('moa-config', 'defaultPreset: self-moa\n')).defaultPreset).toBe('self-moa');
  });

  it('names the file when it is missing', () => {
    const path = join(directory, 'missing.yaml');
    const error = expectConfigError(() => loadMoaConfig(path), '', path);
    expect(error.message).toContain('file not found');
  });

  it('reports a YAML syntax error with its line', () => {
    const path = file('broken.yaml', 'defaultPreset: moa\npresets: [\n  - a\nwebhooks: {\n');
    const error = expectConfigError(() => loadMoaConfig(path), '', path);
    expect(error.message).toMatch(/YAML syntax error: .*line \d+/);
  });

  it('reports a JSON syntax error with its line', () => {
    const path = file('broken.json', '{\n  "defaultPreset": "moa",\n}\n');
    const error = expectConfigError(() => loadMoaConfig(path), '', path);
    expect(error.message).toMatch(/JSON syntax error: .*line 3/);
  });

  it('reports a schema error naming the file and the field', () => {
    const path = file(
      'bad.yaml',
      'presets:\n  moa:\n    layers: [[{model: together/x}]]\n    aggregator: {}\n',
    );
    const error = expectConfigError(() => loadMoaConfig(path), 'presets.moa.aggregator.model', path);
    expect(error.message).toBe(`Invalid MoA config (${path}): presets.moa.aggregator.model: required`);
  });
});

describe('resolvePreset and priceOf', () => {
  const config = builtInConfig();

  it('resolves a preset by name, or the default preset without one', () => {
    expect(resolvePreset(config, 'moa-lite')?.name).toBe('moa-lite');
    expect(resolvePreset(config)?.name).toBe('moa');
    expect(resolvePreset(config, 'nope')).toBeUndefined();
  });

  it('finds a price, or undefined', () => {
    expect(priceOf(config, 'openai/gpt-4o-mini')).toEqual({ inputCostPerMTok: 0.15, outputCostPerMTok: 0.6 });
    expect(priceOf(config, 'openai/unknown')).toBeUndefined();
  });

  it('ignores names inherited from Object.prototype', () => {
    expect(resolvePreset(config, 'constructor')).toBeUndefined();
    expect(priceOf(config, 'toString')).toBeUndefined();
  });
});

describe('tenants and quotas', () => {
  const secret = 'whsec_c2VjcmV0LWtleS1mb3ItdGVhbS1h';

  it('defaults every quota generously', () => {
    expect(parseMoaConfig({}).quotas).toEqual({
      maxActiveJobs: 1000,
      maxActiveBatchItems: 200_000,
      maxFileBytes: 2 * 1024 * 1024 * 1024,
      maxStreams: 200,
    });
  });

  it("merges default quotas, then a tenant's own, field by field", () => {
    const config = parseMoaConfig({
      quotas: { maxActiveJobs: 10 },
      tenants: { 'team-a': { webhookSecret: secret, quotas: { maxStreams: 5 } }, 'team-b': {} },
    });
    expect(quotasOf(config, 'team-a')).toMatchObject({
      maxActiveJobs: 10,
      maxStreams: 5,
      maxActiveBatchItems: 200_000,
    });
    expect(quotasOf(config, 'team-b')).toEqual(config.quotas);
    expect(quotasOf(config, 'unlisted')).toEqual(config.quotas);
    expect(config.tenants['team-a']?.webhookSecret).toBe(secret);
  });

  it('never reads a quota or secret from an object prototype', () => {
    const config = parseMoaConfig({ tenants: { constructor: { quotas: { maxStreams: 1 } } } });
    expect(quotasOf(config, 'constructor').maxStreams).toBe(1);
    expect(quotasOf(config, 'toString')).toEqual(config.quotas);
    expect(quotasOf(config, '__proto__')).toEqual(config.quotas);
  });

  it.each([
    // JSON.parse makes "__proto__" an own key, as a config file would.
    [JSON.parse('{"tenants": {"__proto__": {"quotas": {"maxStreams": 1}}}}') as unknown, /tenants/],
    [{ tenants: { 'Team A': {} } }, /tenants/],
    [{ tenants: { a: { webhookSecret: 'secret' } } }, /tenants\.a\.webhookSecret/],
    [{ tenants: { a: { quotas: { maxStreams: 0 } } } }, /tenants\.a\.quotas\.maxStreams/],
    [{ quotas: { maxFiles: 3 } }, /quotas/],
  ])('refuses %j, naming the field', (file, message) => {
    expect(() => parseMoaConfig(file)).toThrow(message);
  });
});

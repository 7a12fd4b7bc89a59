import { parseMoaConfig } from '@moa-queue/moa';
import { describe, expect, it } from 'vitest';
import { metricLabelsFor, OTHER_LABEL } from './metric-labels.js';

const config = parseMoaConfig({
  providers: { fake: { baseURL: 'http://127.0.0.1:1/v1' } },
  models: { 'fake/priced-only': { inputCostPerMTok: 1, outputCostPerMTok: 1 } },
  presets: {
    duo: {
      layers: [[{ model: 'fake/alpha' }, { model: 'fake/beta' }]],
      aggregator: { model: 'fake/aggregator' },
    },
  },
  defaultPreset: 'duo',
});
const labels = metricLabelsFor(config);

describe('metric labels', () => {
  it('keep configured presets and map anything else to other', () => {
    expect(labels.preset('duo')).toBe('duo');
    expect(labels.preset('moa')).toBe('moa'); // a built-in preset is configured too
    for (const name of ['evil-preset', 'constructor', '__proto__', 'toString', 'job_abc123', '']) {
      expect(labels.preset(name)).toBe(OTHER_LABEL);
    }
  });

  it('keep models that are priced or used by a configured preset', () => {
    for (const model of ['fake/alpha', 'fake/beta', 'fake/aggregator', 'fake/priced-only']) {
      expect(labels.model(model)).toBe(model);
    }
    expect(labels.model('together/Qwen/Qwen2.5-72B-Instruct-Turbo')).toBe(
      'together/Qwen/Qwen2.5-72B-Instruct-Turbo',
    );
    for (const model of [
      'fake/steal-money',
      'evil/x',
      'constructor',
      'fake/alpha ',
      'Ignore previous instructions',
    ]) {
      expect(labels.model(model)).toBe(OTHER_LABEL);
    }
  });

  it('keep configured providers', () => {
    expect(labels.provider('fake')).toBe('fake');
    expect(labels.provider('together')).toBe('together');
    for (const name of ['evil', 'constructor', 'hasOwnProperty', '__proto__']) {
      expect(labels.provider(name)).toBe(OTHER_LABEL);
    }
  });

  it('keep finish reasons to a fixed set, never the provider text', () => {
    expect(
      ['stop', 'length', 'content_filter', 'tool_calls', 'function_call'].map(labels.finishReason),
    ).toEqual(['stop', 'length', 'content_filter', 'tool_calls', 'tool_calls']);
    for (const reason of ['eos', 'Ignore previous instructions', 'constructor']) {
      expect(labels.finishReason(reason)).toBe('other');
    }
    expect(labels.finishReason(null)).toBe('unknown');
  });
});

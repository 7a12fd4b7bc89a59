import { jobDataSchemasFor } from '@moa-queue/contract';
import { parseMoaConfig } from '@moa-queue/moa';
import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { expectJobData, INVALID_JOB_DATA, parseJobData } from './parse-job-data.js';

const config = parseMoaConfig({
  providers: { fake: { baseURL: 'http://127.0.0.1:1/v1' } },
  presets: { duo: { layers: [[{ model: 'fake/alpha' }]], aggregator: { model: 'fake/aggregator' } } },
  defaultPreset: 'duo',
});
const schemas = jobDataSchemasFor(config);

function thrownBy(action: () => unknown): Error {
  try {
    action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('did not throw');
}

describe('parseJobData', () => {
  it('returns the parsed data, defaults filled in and unknown keys dropped', () => {
    const data = { requestId: 'job_a', url: 'https://example.com/hook', extra: 1 };
    expect(parseJobData(schemas.webhook, data)).toEqual({
      requestId: 'job_a',
      url: 'https://example.com/hook',
    });
  });

  it('throws an UnrecoverableError naming the field, and how many more issues there were', () => {
    const error = thrownBy(() =>
      parseJobData(schemas.call, {
        requestId: 'job_a',
        presetName: 'duo',
        layer: 1,
        role: 'proposer',
        agentIndex: 0,
        agent: { model: 'evil/x', temperature: 'hot', maxTokens: 1 },
        round: 5,
      }),
    );
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect(error.name).toBe('UnrecoverableError');
    expect(error.message).toMatch(
      /^invalid job data: agent\.temperature: .*expected number.* \(and 1 more issue\)$/,
    );
  });

  it('names a config problem by the agent it is in', () => {
    const preset = structuredClone(config.presets.duo!);
    preset.layers[0]![0]!.model = 'evil/steal-money';
    const error = thrownBy(() =>
      parseJobData(schemas.request, {
        requestId: 'job_a',
        preset,
        messages: [{ role: 'user', content: 'x' }],
        metadata: {},
        createdAt: 1,
      }),
    );
    expect(error.message).toBe(
      'invalid job data: preset.layers.0.0.model: unknown provider "evil": not in the config',
    );
  });

  it('says what is wrong with data that is not an object, without a field', () => {
    expect(thrownBy(() => parseJobData(schemas.batch, 'batch_x')).message).toMatch(
      new RegExp(`^${INVALID_JOB_DATA}: .*expected object`),
    );
  });

  it('keeps the message short whatever the input', () => {
    const key = 'k'.repeat(100_000);
    const error = thrownBy(() =>
      parseJobData(schemas.request, {
        requestId: 'job_a',
        preset: config.presets.duo,
        messages: [{ role: 'user', content: 'x' }],
        metadata: { [key]: 'v' },
        createdAt: 1,
      }),
    );
    expect(error.message.startsWith('invalid job data: metadata.kkkk')).toBe(true);
    expect(error.message.length).toBeLessThan(500);
  });
});

describe('expectJobData', () => {
  it('passes when the condition holds and fails the same way as parseJobData otherwise', () => {
    expect(() => expectJobData(true, 'requestId', 'is not the id of this job')).not.toThrow();
    const error = thrownBy(() => expectJobData(false, 'requestId', 'is not the id of this job'));
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect(error.message).toBe('invalid job data: requestId: is not the id of this job');
  });
});

import { describe, expect, it } from 'vitest';
import { parseCliArguments } from './cli-options.js';

describe('parseCliArguments', () => {
  it('maps flags to provider options', () => {
    expect(
      parseCliArguments([
        '--port',
        '8080',
        '--host',
        '127.0.0.1',
        '--latency-ms',
        '25',
        '--token-interval-ms',
        '5',
        '--output-words',
        '12',
      ]),
    ).toEqual({
      help: false,
      options: { port: 8080, host: '127.0.0.1', defaultLatencyMs: 25, tokenIntervalMs: 5, outputWords: 12 },
    });
    expect(parseCliArguments([])).toEqual({ help: false, options: {} });
    expect(parseCliArguments(['--help'])).toEqual({ help: true });
  });

  it('rejects unknown flags and non-numeric values', () => {
    expect(() => parseCliArguments(['--nope'])).toThrow();
    expect(() => parseCliArguments(['--port', 'abc'])).toThrow(/--port/);
  });
});

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

  it('takes context windows per model, repeatedly', () => {
    expect(
      parseCliArguments(['--context-window', 'Qwen/Qwen2.5-7B=2000', '--context-window', 'small=64']),
    ).toEqual({ help: false, options: { contextWindows: { 'Qwen/Qwen2.5-7B': 2000, small: 64 } } });
    expect(() => parseCliArguments(['--context-window', 'small'])).toThrow(/--context-window/);
    expect(() => parseCliArguments(['--context-window', 'small=0'])).toThrow(/--context-window/);
  });

  it('rejects unknown flags and non-numeric values', () => {
    expect(() => parseCliArguments(['--nope'])).toThrow();
    expect(() => parseCliArguments(['--port', 'abc'])).toThrow(/--port/);
  });
});

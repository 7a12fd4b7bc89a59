import { parseArgs } from 'node:util';
import type { FakeProviderOptions } from './fake-provider.js';

/** Usage text for `main.ts --help` and argument errors. */
export const USAGE = `Usage: node --conditions=development --import tsx tools/fake-provider/src/main.ts [options]

  --port N               port to listen on (default 0: a free one)
  --host H               interface to listen on (default 127.0.0.1)
  --latency-ms N         delay before every answer (default 0)
  --token-interval-ms N  delay before each streamed word (default 0)
  --output-words N       words per generated answer (default 40)
  --require-api-key K    answer 401 unless Authorization is "Bearer K"
  --context-window M=N   refuse prompts to model M over N tokens with a 400
                         context_length_exceeded (repeatable)
  --help                 print this text`;

/** The parsed command line: provider options, or a request for help. */
export type CliCommand = { help: true } | { help: false; options: FakeProviderOptions };

function numberOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed < 0) {
    throw new TypeError(`--${name} must be a non-negative number, got "${value}"`);
  }
  return parsed;
}

/**
 * Parses the `main.ts` command line with `node:util` `parseArgs`.
 * @throws TypeError for unknown options or non-numeric values.
 */
export function parseCliArguments(args: readonly string[]): CliCommand {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'latency-ms': { type: 'string' },
      'token-interval-ms': { type: 'string' },
      'output-words': { type: 'string' },
      'require-api-key': { type: 'string' },
      'context-window': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return { help: true };
  const options: FakeProviderOptions = {};
  const port = numberOption('port', values.port);
  if (port !== undefined) options.port = port;
  if (values.host !== undefined) options.host = values.host;
  const latencyMs = numberOption('latency-ms', values['latency-ms']);
  if (latencyMs !== undefined) options.defaultLatencyMs = latencyMs;
  const tokenIntervalMs = numberOption('token-interval-ms', values['token-interval-ms']);
  if (tokenIntervalMs !== undefined) options.tokenIntervalMs = tokenIntervalMs;
  const outputWords = numberOption('output-words', values['output-words']);
  if (outputWords !== undefined) options.outputWords = outputWords;
  if (values['require-api-key'] !== undefined) options.requireApiKey = values['require-api-key'];
  for (const entry of values['context-window'] ?? []) {
    const match = /^(.+)=(\d+)$/.exec(entry);
    if (!match || Number(match[2]) < 1) {
      throw new TypeError(
        `--context-window must be MODEL=TOKENS with TOKENS a positive integer, got "${entry}"`,
      );
    }
    options.contextWindows = { ...options.contextWindows, [match[1] as string]: Number(match[2]) };
  }
  return { help: false, options };
}

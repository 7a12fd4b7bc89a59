import { parseArgs } from 'node:util';
import { CliError } from './api.js';
import { batchCommand } from './commands/batch.js';
import { jobsCommand } from './commands/jobs.js';
import { modelsCommand } from './commands/models.js';
import { runCommand } from './commands/run.js';

const USAGE = `moa — Mixture-of-Agents through MoA Queue

Usage:
  moa run "prompt" [--preset P] [--local]
      Answer one prompt: through the API, or with --local in this process
      (providers from MOA_CONFIG and their key variables).
  moa batch IN -o OUT [--preset P] [--format openai|alpaca|prompts|mt-bench]
                      [--model-id ID] [--retry-failed] [--poll-interval MS]
      Run a whole file through the Batch API. IN is OpenAI batch JSONL, plain
      prompts (one per line), an AlpacaEval JSON array [{instruction, dataset?}]
      or FastChat's MT-Bench question.jsonl ({question_id, category, turns}).
      OUT follows IN's format unless --format says otherwise (AlpacaEval:
      [{instruction, output, generator, dataset}]; prompts: JSONL {prompt, output,
      error}; MT-Bench: FastChat model_answer JSONL, turn 2 asked with the MoA's
      own turn-1 answer). --model-id sets the AlpacaEval generator / MT-Bench
      model_id (default: the preset).
      Shows progress; resumable (state in OUT.moa-state.json): re-run the same
      command after an interruption to continue; a finished command is a no-op.
      With failed items an AlpacaEval or MT-Bench file goes to OUT.partial.json
      or OUT.partial instead of OUT (exit 3); --retry-failed runs them again.
  moa models check [--preset P]
      Ask every provider of the presets (MOA_CONFIG, keys from their variables)
      for GET /v1/models and list each preset model it does not serve. Exit 1
      when a model is missing or a provider cannot be asked.
  moa jobs get ID
      Print a job object.

Exit codes: 0 done; 1 failed (moa batch: some items never ran, re-run to run
them); 2 usage error; 3 moa batch finished with failed items.

Environment:
  MOA_API_URL   the API's root URL (default http://127.0.0.1:8080; a trailing /v1 is accepted)
  MOA_API_KEY   bearer key, when the API requires one
  MOA_CONFIG    config file of moa run --local and moa models check (providers,
                presets); provider keys come from the variables it names
`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      preset: { type: 'string', short: 'p' },
      local: { type: 'boolean' },
      output: { type: 'string', short: 'o' },
      format: { type: 'string', short: 'f' },
      'poll-interval': { type: 'string' },
      'retry-failed': { type: 'boolean' },
      'model-id': { type: 'string' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command || command === 'help') {
    process.stdout.write(USAGE);
    return command || values.help ? 0 : 2;
  }
  switch (command) {
    case 'run':
      return runCommand(rest.join(' ') || undefined, { preset: values.preset, local: values.local });
    case 'batch': {
      const poll = values['poll-interval'] ?? process.env.MOA_POLL_INTERVAL_MS;
      const pollIntervalMs = poll === undefined ? undefined : Number(poll);
      if (pollIntervalMs !== undefined && !(pollIntervalMs > 0))
        throw new CliError('--poll-interval must be a positive number of milliseconds', 2);
      return batchCommand(rest[0], {
        out: values.output,
        preset: values.preset,
        format: values.format,
        pollIntervalMs,
        retryFailed: values['retry-failed'],
        modelId: values['model-id'],
      });
    }
    case 'models':
      return modelsCommand(rest, { preset: values.preset });
    case 'jobs':
      return jobsCommand(rest);
    default:
      throw new CliError(`unknown command ${JSON.stringify(command)}; see moa --help`, 2);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof CliError) {
    process.stderr.write(`moa: ${error.message}\n`);
    process.exitCode = error.exitCode;
  } else if (
    error instanceof TypeError &&
    (error as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')
  ) {
    process.stderr.write(`moa: ${error.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`moa: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  }
}

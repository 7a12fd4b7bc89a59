import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { basename } from 'node:path';
import { toFile, type OpenAI } from 'openai';
import { apiTarget, CliError, openaiClient } from '../api.js';
import { DEFAULT_PRESET, parseInput, type BatchFormat } from '../batch/formats.js';
import { ProgressReporter } from '../batch/progress.js';
import { appendFileContent, scanResults, writeOutput } from '../batch/results.js';
import { loadState, resultsPath, saveState, type BatchState, type RoundState } from '../batch/state.js';

/** Options of `moa batch`. */
export interface BatchCommandOptions {
  out?: string;
  preset?: string;
  format?: string;
  pollIntervalMs?: number;
}

type BatchWithMoa = OpenAI.Batches.Batch & { moa?: { cost_usd?: number; cancelled?: number } };

const TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);
const note = (text: string) => process.stderr.write(`${text}\n`);

/** Polls a batch until it ends, showing progress; returns the ended batch. */
async function follow(
  client: OpenAI,
  round: RoundState,
  earlierCost: number,
  pollMs: number,
): Promise<BatchWithMoa> {
  const progress = new ProgressReporter();
  for (;;) {
    const batch = (await client.batches.retrieve(round.batchId)) as BatchWithMoa;
    const counts = batch.request_counts ?? { total: round.items, completed: 0, failed: 0 };
    const ended = TERMINAL.has(batch.status);
    progress.update(
      {
        total: counts.total || round.items,
        completed: counts.completed,
        failed: counts.failed + (batch.moa?.cancelled ?? 0),
        costUsd: earlierCost + (batch.moa?.cost_usd ?? 0),
        status: batch.status,
      },
      ended,
    );
    if (ended) return batch;
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** A batch this command already created for the same input and round (its state file was lost in between). */
async function findSubmitted(client: OpenAI, tag: string): Promise<BatchWithMoa | undefined> {
  const page = await client.batches.list({ limit: 100 });
  return page.data.find((batch) => batch.metadata?.moa_cli_input === tag && batch.status !== 'failed') as
    BatchWithMoa | undefined;
}

/**
 * `moa batch IN -o OUT`: converts IN to batch JSONL, submits it through the
 * Batch API, follows it with a progress bar, downloads the results and writes
 * OUT. Resumable: the state file next to OUT names the batch, so a re-run
 * after an interruption follows the same batch, then submits only the items
 * still without an answer; a re-run of a finished command does nothing.
 */
export async function batchCommand(input: string | undefined, options: BatchCommandOptions): Promise<number> {
  const out = options.out;
  if (!input || !out)
    throw new CliError('usage: moa batch IN -o OUT [--preset P] [--format openai|alpaca|prompts]', 2);
  if (options.format !== undefined && !['openai', 'alpaca', 'prompts'].includes(options.format)) {
    throw new CliError(
      `--format must be openai, alpaca or prompts, got ${JSON.stringify(options.format)}`,
      2,
    );
  }
  if (!existsSync(input)) throw new CliError(`no such input file: ${input}`, 2);
  const { format: inputFormat, items } = parseInput(readFileSync(input, 'utf8'), options.preset);
  if (items.length === 0) throw new CliError(`${input} has no items`, 2);
  const outputFormat = (options.format ?? inputFormat) as BatchFormat;
  const firstModel = (JSON.parse(items[0]!.line) as { body?: { model?: unknown } }).body?.model;
  const generator = options.preset ?? (typeof firstModel === 'string' ? firstModel : DEFAULT_PRESET);
  const inputHash = createHash('sha256')
    .update(items.map((item) => item.line).join('\n'))
    .digest('hex');
  const results = resultsPath(out);
  const pollMs = options.pollIntervalMs ?? 1000;

  let state: BatchState | undefined = loadState(out);
  if (state && state.inputHash !== inputHash) {
    note(`the input or its options changed since ${out} was started: starting over`);
    rmSync(results, { force: true });
    state = undefined;
  }
  if (state?.done && existsSync(out) && state.outputFormat === outputFormat) {
    note(
      `${out} is complete (${items.length} items, batch ${state.rounds.map((round) => round.batchId).join(', ')}): nothing to do`,
    );
    return 0;
  }
  const target = apiTarget();
  state ??= { version: 1, inputHash, apiUrl: target.root, rounds: [], done: false, outputFormat };
  state.outputFormat = outputFormat;
  saveState(out, state);
  const client = openaiClient(target);
  let submitted = false;

  for (;;) {
    const current = state.rounds.at(-1);
    if (current && !current.downloaded) {
      note(`following batch ${current.batchId} (${current.items} items)`);
      const earlierCost = state.rounds.slice(0, -1).reduce((sum, round) => sum + round.costUsd, 0);
      const batch = await follow(client, current, earlierCost, pollMs);
      if (batch.status === 'failed') {
        const reasons = (batch.errors?.data ?? [])
          .map((error) => `${error.code}: ${error.message}`)
          .join('; ');
        current.downloaded = true;
        saveState(out, state);
        throw new CliError(`batch ${batch.id} failed: ${reasons || 'no reason given'}`);
      }
      for (const fileId of [batch.output_file_id, batch.error_file_id]) {
        if (fileId) await appendFileContent(client, fileId, results);
      }
      current.downloaded = true;
      current.costUsd = batch.moa?.cost_usd ?? 0;
      saveState(out, state);
      continue;
    }

    const scanned = await scanResults(results);
    const missing = items.filter((item) => !scanned.get(item.customId)?.ok);
    if (missing.length === 0 || submitted) {
      await writeOutput({
        out,
        format: outputFormat,
        items,
        results: scanned,
        resultsFile: results,
        generator,
      });
      state.done = missing.length === 0;
      saveState(out, state);
      const cost = state.rounds.reduce((sum, round) => sum + round.costUsd, 0);
      if (missing.length > 0) {
        note(
          `wrote ${out}: ${items.length - missing.length} of ${items.length} items answered, cost $${cost.toFixed(4)}; ` +
            `${missing.length} without an answer (e.g. ${missing[0]!.customId}: ${scanned.get(missing[0]!.customId)?.error?.message ?? 'not run'}). ` +
            'Re-run the same command to retry them.',
        );
        return 1;
      }
      note(`wrote ${out}: ${items.length} items, cost $${cost.toFixed(4)}`);
      return 0;
    }

    submitted = true;
    const tag = `${inputHash.slice(0, 40)}:${state.rounds.length}`;
    const existing = await findSubmitted(client, tag);
    let round: RoundState;
    if (existing) {
      note(`resuming batch ${existing.id}, submitted earlier for this input`);
      round = {
        batchId: existing.id,
        inputFileId: existing.input_file_id,
        items: missing.length,
        downloaded: false,
        costUsd: 0,
      };
    } else {
      const body = Buffer.from(`${missing.map((item) => item.line).join('\n')}\n`);
      const file = await client.files.create({
        file: await toFile(body, `${basename(input)}.batch.jsonl`),
        purpose: 'batch',
      });
      const batch = await client.batches.create({
        input_file_id: file.id,
        endpoint: '/v1/chat/completions',
        completion_window: '24h',
        metadata: { moa_cli_input: tag },
      });
      note(
        `submitted batch ${batch.id}: ${missing.length} items (${inputFormat} input${state.rounds.length > 0 ? ', the ones still missing' : ''})`,
      );
      round = {
        batchId: batch.id,
        inputFileId: file.id,
        items: missing.length,
        downloaded: false,
        costUsd: 0,
      };
    }
    state.rounds.push(round);
    saveState(out, state);
  }
}

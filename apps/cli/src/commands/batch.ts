import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { toFile, type OpenAI } from 'openai';
import { apiTarget, CliError, openaiClient } from '../api.js';
import {
  BATCH_FORMATS,
  DEFAULT_PRESET,
  parseInput,
  type BatchFormat,
  type ParsedInput,
} from '../batch/formats.js';
import { mtBenchCustomId, mtBenchHashBasis, mtBenchNextRequests } from '../batch/mt-bench.js';
import { ProgressReporter } from '../batch/progress.js';
import {
  appendFileContent,
  outcomeOf,
  scanResults,
  writeOutput,
  type BatchRequest,
  type ItemResult,
} from '../batch/results.js';
import {
  loadState,
  partialPath,
  resultsPath,
  saveState,
  type BatchState,
  type RoundState,
} from '../batch/state.js';

/** Options of `moa batch`. */
export interface BatchCommandOptions {
  out?: string;
  preset?: string;
  format?: string;
  pollIntervalMs?: number;
  /** Run again the items that ran and failed (a plain re-run runs only those that never ran). */
  retryFailed?: boolean;
  /** The AlpacaEval `generator` / MT-Bench `model_id` written (default: the preset). */
  modelId?: string;
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

const USAGE =
  'usage: moa batch IN -o OUT [--preset P] [--format openai|alpaca|prompts|mt-bench] [--model-id ID] [--retry-failed]';

/** How the units the user counts (items, or MT-Bench questions) stand. */
interface Tally {
  total: number;
  answered: number;
  failed: number;
  notRun: number;
  /** An example of a failed unit: its custom_id and error. */
  example?: { customId: string; message: string };
}

/** The requests still to answer whose prerequisites are answered: every unanswered item, or each question's next turn. */
function nextRequests(input: ParsedInput, preset: string, results: Map<string, ItemResult>): BatchRequest[] {
  if (input.format === 'mt-bench') return mtBenchNextRequests(input.questions, preset, results);
  return input.items
    .filter((item) => !results.get(item.customId)?.ok)
    .map((item) => ({ customId: item.customId, line: item.line }));
}

/** Counts answered, failed and never-run units; an MT-Bench question stands as its first unanswered turn. */
function tally(input: ParsedInput, results: Map<string, ItemResult>): Tally {
  const ids =
    input.format === 'mt-bench'
      ? input.questions.map((question) => {
          for (let turn = 1; turn <= question.turns.length; turn += 1) {
            const id = mtBenchCustomId(question, turn);
            if (!results.get(id)?.ok) return id;
          }
          return mtBenchCustomId(question, question.turns.length);
        })
      : input.items.map((item) => item.customId);
  const counts: Tally = { total: ids.length, answered: 0, failed: 0, notRun: 0 };
  for (const id of ids) {
    const outcome = outcomeOf(results.get(id));
    if (outcome === 'ok') counts.answered += 1;
    else if (outcome === 'not_run') counts.notRun += 1;
    else {
      counts.failed += 1;
      counts.example ??= { customId: id, message: results.get(id)?.error?.message ?? '' };
    }
  }
  return counts;
}

/** What a submitted round holds, for the log line. */
function describeRound(input: ParsedInput, requests: BatchRequest[], retried: number): string {
  const parts = [`${input.format} input`];
  if (input.format === 'mt-bench') {
    const perTurn = new Map<string, number>();
    for (const request of requests) {
      const turn = /:turn-(\d+)$/.exec(request.customId)?.[1] ?? '?';
      perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1);
    }
    parts.push(
      [...perTurn]
        .sort(([a], [b]) => Number(a) - Number(b))
        .map(([turn, count]) => `turn ${turn}: ${count}`)
        .join(', '),
    );
  }
  if (retried > 0) parts.push(`retrying ${retried} failed`);
  return parts.join('; ');
}

/**
 * `moa batch IN -o OUT`: converts IN to batch JSONL, submits it through the
 * Batch API, follows it with a progress bar, downloads the results and writes
 * OUT. Resumable: the state file next to OUT names the batch, so a re-run
 * after an interruption follows the same batch, then submits only the items
 * that never ran (and, with `--retry-failed`, those that failed); a re-run
 * of a finished command does nothing. MT-Bench runs a round per turn, each
 * turn's requests carrying the MoA's own answers to the earlier turns.
 *
 * Exit codes: 0 complete; 1 an error, or items left that never ran
 * (cancelled, expired, interrupted: a re-run runs them); 2 a usage error;
 * 3 finished with failed items (a benchmark file goes to its partial path
 * instead of OUT; `--retry-failed` retries them).
 */
export async function batchCommand(input: string | undefined, options: BatchCommandOptions): Promise<number> {
  const out = options.out;
  if (!input || !out) throw new CliError(USAGE, 2);
  if (options.format !== undefined && !(BATCH_FORMATS as readonly string[]).includes(options.format)) {
    throw new CliError(
      `--format must be one of ${BATCH_FORMATS.join(', ')}, got ${JSON.stringify(options.format)}`,
      2,
    );
  }
  if (options.modelId !== undefined && options.modelId.trim() === '')
    throw new CliError('--model-id must not be empty', 2);
  if (!existsSync(input)) throw new CliError(`no such input file: ${input}`, 2);
  const parsed = parseInput(readFileSync(input, 'utf8'), options.preset);
  const units = parsed.format === 'mt-bench' ? parsed.questions.length : parsed.items.length;
  if (units === 0) throw new CliError(`${input} has no items`, 2);
  const outputFormat = (options.format ?? parsed.format) as BatchFormat;
  if (outputFormat === 'mt-bench' && parsed.format !== 'mt-bench') {
    throw new CliError(
      `--format mt-bench reads FastChat's question.jsonl ({question_id, category, turns}); ${input} is ${parsed.format} input`,
      2,
    );
  }
  if (parsed.format === 'mt-bench' && outputFormat !== 'mt-bench') {
    throw new CliError(
      `MT-Bench questions are written only as FastChat model answers (--format mt-bench)`,
      2,
    );
  }
  let preset: string;
  let hashBasis: string;
  if (parsed.format === 'mt-bench') {
    preset = options.preset ?? DEFAULT_PRESET;
    hashBasis = mtBenchHashBasis(parsed.questions, preset);
  } else {
    const firstModel = (JSON.parse(parsed.items[0]!.line) as { body?: { model?: unknown } }).body?.model;
    preset = options.preset ?? (typeof firstModel === 'string' ? firstModel : DEFAULT_PRESET);
    hashBasis = parsed.items.map((item) => item.line).join('\n');
  }
  const generator = options.modelId ?? preset;
  const inputHash = createHash('sha256').update(hashBasis).digest('hex');
  const results = resultsPath(out);
  const partial = partialPath(out, outputFormat);
  const pollMs = options.pollIntervalMs ?? 1000;

  // FastChat keeps answers in model_answer/<model_id>.jsonl: make the directory, as its scripts do.
  mkdirSync(dirname(out), { recursive: true });
  let state: BatchState | undefined = loadState(out);
  if (state && state.inputHash !== inputHash) {
    note(`the input or its options changed since ${out} was started: starting over`);
    rmSync(results, { force: true });
    state = undefined;
  }
  if (
    state?.done &&
    existsSync(out) &&
    state.outputFormat === outputFormat &&
    (state.generator ?? generator) === generator
  ) {
    note(
      `${out} is complete (${units} ${parsed.format === 'mt-bench' ? 'questions' : 'items'}, batch ${state.rounds.map((round) => round.batchId).join(', ')}): nothing to do`,
    );
    return 0;
  }
  const target = apiTarget();
  state ??= { version: 1, inputHash, apiUrl: target.root, rounds: [], done: false, outputFormat };
  state.outputFormat = outputFormat;
  state.generator = generator;
  saveState(out, state);
  const client = openaiClient(target);
  // Requests submitted by this process: one that comes back unanswered is not sent again in this run.
  const attempted = new Set<string>();

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
    let retried = 0;
    const toSend = nextRequests(parsed, preset, scanned).filter((request) => {
      if (attempted.has(request.customId)) return false;
      const outcome = outcomeOf(scanned.get(request.customId));
      if (outcome === 'failed' && options.retryFailed) retried += 1;
      return outcome === 'not_run' || (outcome === 'failed' && options.retryFailed === true);
    });

    if (toSend.length === 0) {
      const counts = tally(parsed, scanned);
      const cost = state.rounds.reduce((sum, round) => sum + round.costUsd, 0);
      const noun = parsed.format === 'mt-bench' ? 'questions' : 'items';
      if (counts.answered === counts.total) {
        await writeOutput({
          path: out,
          format: outputFormat,
          input: parsed,
          results: scanned,
          resultsFile: results,
          generator,
        });
        if (partial) rmSync(partial, { force: true });
        state.done = true;
        saveState(out, state);
        note(`wrote ${out}: ${counts.total} ${noun}, cost $${cost.toFixed(4)}`);
        return 0;
      }
      const written = partial ?? out;
      await writeOutput({
        path: written,
        format: outputFormat,
        input: parsed,
        results: scanned,
        resultsFile: results,
        generator,
      });
      if (partial && existsSync(out)) {
        // Left by an earlier run on another input: never leave a file that looks complete beside a partial one.
        rmSync(out, { force: true });
        note(`removed ${out}: it was written for another input`);
      }
      state.done = false;
      saveState(out, state);
      const problems: string[] = [];
      if (counts.failed > 0) {
        const example = counts.example ? ` (e.g. ${counts.example.customId}: ${counts.example.message})` : '';
        problems.push(`${counts.failed} failed${example}; re-run with --retry-failed to retry them`);
      }
      if (counts.notRun > 0) {
        problems.push(
          `${counts.notRun} not run (cancelled, expired or interrupted). Re-run the same command to run them`,
        );
      }
      note(
        `${partial ? `wrote ${written} instead of ${out}` : `wrote ${out}`}: ${counts.answered} of ${counts.total} ${noun} answered, ` +
          `cost $${cost.toFixed(4)}; ${problems.join('; ')}.`,
      );
      return counts.notRun > 0 ? 1 : 3;
    }

    for (const request of toSend) attempted.add(request.customId);
    const tag = `${inputHash.slice(0, 40)}:${state.rounds.length}`;
    const existing = await findSubmitted(client, tag);
    let round: RoundState;
    if (existing) {
      note(`resuming batch ${existing.id}, submitted earlier for this input`);
      round = {
        batchId: existing.id,
        inputFileId: existing.input_file_id,
        items: toSend.length,
        downloaded: false,
        costUsd: 0,
      };
    } else {
      const body = Buffer.from(`${toSend.map((request) => request.line).join('\n')}\n`);
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
      note(`submitted batch ${batch.id}: ${toSend.length} items (${describeRound(parsed, toSend, retried)})`);
      round = {
        batchId: batch.id,
        inputFileId: file.id,
        items: toSend.length,
        downloaded: false,
        costUsd: 0,
      };
    }
    state.rounds.push(round);
    saveState(out, state);
  }
}

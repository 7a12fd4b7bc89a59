import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { BatchFormat } from './formats.js';

/** One submitted batch of a `moa batch` run. */
export interface RoundState {
  batchId: string;
  inputFileId: string;
  items: number;
  /** Its output and error files are in the results file. */
  downloaded: boolean;
  costUsd: number;
}

/** What `moa batch` keeps next to OUT (`OUT.moa-state.json`) to resume and to know it is done. */
export interface BatchState {
  version: 1;
  /** SHA-256 of the batch input derived from IN and the options: another input starts over. */
  inputHash: string;
  apiUrl: string;
  rounds: RoundState[];
  /** Every item has an answer and OUT was written. */
  done: boolean;
  /** The format OUT was (or is to be) written in. */
  outputFormat: BatchFormat;
  /** The AlpacaEval `generator` / MT-Bench `model_id` OUT was written with (absent in older state files). */
  generator?: string;
}

export const statePath = (out: string): string => `${out}.moa-state.json`;
export const resultsPath = (out: string): string => `${out}.moa-results.jsonl`;

/**
 * Where a run with unanswered items writes a benchmark file instead of OUT,
 * so that it is never taken for a complete one: `<out>.partial.json` for
 * AlpacaEval, `<out>.partial` for MT-Bench (not `.jsonl`: FastChat's
 * gen_judgment judges every `*.jsonl` of its model_answer directory).
 */
export function partialPath(out: string, format: BatchFormat): string | undefined {
  if (format === 'alpaca') return `${out}.partial.json`;
  if (format === 'mt-bench') return `${out}.partial`;
  return undefined;
}

export function loadState(out: string): BatchState | undefined {
  const path = statePath(out);
  if (!existsSync(path)) return undefined;
  try {
    const state = JSON.parse(readFileSync(path, 'utf8')) as BatchState;
    return state.version === 1 && Array.isArray(state.rounds) ? state : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the state atomically (a temporary file renamed over it): a kill never leaves half a file. */
export function saveState(out: string, state: BatchState): void {
  const path = statePath(out);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

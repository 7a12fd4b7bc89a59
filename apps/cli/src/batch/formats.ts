import { CliError } from '../api.js';
import { looksLikeMtBenchQuestion, parseMtBenchQuestions, type MtBenchQuestion } from './mt-bench.js';

/** What `moa batch` reads and writes. */
export type BatchFormat = 'openai' | 'alpaca' | 'prompts' | 'mt-bench';

/** The formats `--format` accepts. */
export const BATCH_FORMATS: readonly BatchFormat[] = ['openai', 'alpaca', 'prompts', 'mt-bench'];

/** One request of the batch: its line of batch JSONL, and the text it asks (for the other output formats). */
export interface BatchItem {
  customId: string;
  line: string;
  prompt: string;
  dataset: string | null;
}

/**
 * A parsed input: one request per item (OpenAI batch JSONL, AlpacaEval,
 * plain prompts), or MT-Bench questions, whose later turns are built from
 * the answers to their earlier ones.
 */
export type ParsedInput =
  | { format: 'openai' | 'alpaca' | 'prompts'; items: BatchItem[] }
  | { format: 'mt-bench'; questions: MtBenchQuestion[] };

/** The preset used when neither `--preset` nor the input names one: the built-in default. */
export const DEFAULT_PRESET = 'moa';

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function batchLine(customId: string, preset: string, prompt: string): string {
  return JSON.stringify({
    custom_id: customId,
    method: 'POST',
    url: '/v1/chat/completions',
    body: { model: preset, messages: [{ role: 'user', content: prompt }] },
  });
}

/** The text of the last user message of a chat body (content as a string or text parts). */
function lastUserText(body: unknown): string {
  const messages = isRecord(body) && Array.isArray(body.messages) ? body.messages : [];
  for (const message of [...messages].reverse()) {
    if (!isRecord(message) || message.role !== 'user') continue;
    if (typeof message.content === 'string') return message.content;
    if (Array.isArray(message.content)) {
      return message.content
        .map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : ''))
        .join('');
    }
  }
  return '';
}

/**
 * Reads an input file, telling its format by content: a JSON array of
 * `{instruction, dataset?}` is AlpacaEval; JSONL whose first line is an
 * object with a `custom_id` is OpenAI batch input; JSONL whose first line
 * is an object with a `question_id` and `turns` is FastChat's MT-Bench
 * `question.jsonl`; anything else is plain prompts, one per line. Custom ids
 * of AlpacaEval and plain prompts are item indexes.
 */
export function parseInput(text: string, presetOption: string | undefined): ParsedInput {
  const preset = presetOption ?? DEFAULT_PRESET;
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) {
    let entries: unknown;
    try {
      entries = JSON.parse(text);
    } catch (error) {
      throw new CliError(
        `the input looks like a JSON array but does not parse: ${(error as Error).message}`,
        2,
      );
    }
    if (!Array.isArray(entries))
      throw new CliError('the input must be a JSON array of {instruction, dataset?}', 2);
    const items = entries.map((entry, index) => {
      if (!isRecord(entry) || typeof entry.instruction !== 'string') {
        throw new CliError(`entry ${index} of the AlpacaEval input has no string "instruction"`, 2);
      }
      const customId = String(index);
      return {
        customId,
        line: batchLine(customId, preset, entry.instruction),
        prompt: entry.instruction,
        dataset: typeof entry.dataset === 'string' ? entry.dataset : null,
      };
    });
    return { format: 'alpaca', items };
  }

  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  let first: unknown;
  try {
    first = JSON.parse(lines[0] ?? '');
  } catch {
    first = undefined;
  }
  if (looksLikeMtBenchQuestion(first)) {
    return { format: 'mt-bench', questions: parseMtBenchQuestions(text) };
  }
  if (isRecord(first) && 'custom_id' in first) {
    const seen = new Set<string>();
    const items = lines.map((line, index) => {
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        throw new CliError(
          `line ${index + 1} of the batch input is not JSON: ${(error as Error).message}`,
          2,
        );
      }
      if (!isRecord(value) || typeof value.custom_id !== 'string' || value.custom_id === '') {
        throw new CliError(`line ${index + 1} of the batch input has no string custom_id`, 2);
      }
      if (seen.has(value.custom_id))
        throw new CliError(`custom_id ${JSON.stringify(value.custom_id)} appears twice`, 2);
      seen.add(value.custom_id);
      const body = isRecord(value.body) ? { ...value.body } : value.body;
      if (presetOption && isRecord(body)) body.model = presetOption;
      return {
        customId: value.custom_id,
        line: JSON.stringify({ ...value, body }),
        prompt: lastUserText(body),
        dataset: null,
      };
    });
    return { format: 'openai', items };
  }

  return {
    format: 'prompts',
    items: lines.map((line, index) => ({
      customId: String(index),
      line: batchLine(String(index), preset, line),
      prompt: line,
      dataset: null,
    })),
  };
}

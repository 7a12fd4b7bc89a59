import {
  createReadStream,
  createWriteStream,
  existsSync,
  openSync,
  closeSync,
  readSync,
  statSync,
  appendFileSync,
  renameSync,
} from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import type OpenAI from 'openai';
import type { BatchFormat, ParsedInput } from './formats.js';
import { mtBenchAnswerLines } from './mt-bench.js';
import { pythonStrip } from '@moa-queue/moa';

/** One request of a batch: its custom_id and its line of batch JSONL. */
export interface BatchRequest {
  customId: string;
  line: string;
}

/** What the results file says about one item: the best line seen for it (an answer beats an error). */
export interface ItemResult {
  ok: boolean;
  output: string | null;
  error: { code: string; message: string } | null;
  /** The response's HTTP status (200 for an answer), null when the request never ran. */
  statusCode: number | null;
  /** The answer's `created` (Unix seconds), when it has one. */
  created?: number;
  /** 0-based line of the results file holding it. */
  lineNumber: number;
}

/**
 * Where a request stands: answered; `failed` (it ran and failed, e.g. a
 * provider error: retried only with `--retry-failed`); or `not_run` (no
 * result yet, or it was cancelled or expired with its batch, or cancelled
 * while running: a plain re-run runs it).
 */
export type RequestOutcome = 'ok' | 'failed' | 'not_run';

const NOT_RUN_CODES = new Set(['batch_cancelled', 'batch_expired', 'cancelled']);

export function outcomeOf(result: ItemResult | undefined): RequestOutcome {
  if (!result) return 'not_run';
  if (result.ok) return 'ok';
  if (NOT_RUN_CODES.has(result.error?.code ?? '') || result.statusCode === 409) return 'not_run';
  return 'failed';
}

function endsWithNewline(path: string): boolean {
  const size = statSync(path).size;
  if (size === 0) return true;
  const descriptor = openSync(path, 'r');
  try {
    const last = Buffer.alloc(1);
    readSync(descriptor, last, 0, 1, size - 1);
    return last[0] === 0x0a;
  } finally {
    closeSync(descriptor);
  }
}

/**
 * Appends a batch's output or error file to the results file, streamed from
 * the API to disk. A download cut short leaves a partial last line, which is
 * closed first so the next append starts on its own line.
 */
export async function appendFileContent(client: OpenAI, fileId: string, path: string): Promise<void> {
  if (existsSync(path) && !endsWithNewline(path)) appendFileSync(path, '\n');
  const response = await client.files.content(fileId);
  if (!response.body) return;
  await pipeline(Readable.fromWeb(response.body as ReadableStream), createWriteStream(path, { flags: 'a' }));
  if (!endsWithNewline(path)) appendFileSync(path, '\n');
}

/** Reads the results file into the best result per custom_id. Unparsable (cut) lines are skipped. */
export async function scanResults(path: string): Promise<Map<string, ItemResult>> {
  const results = new Map<string, ItemResult>();
  if (!existsSync(path)) return results;
  let lineNumber = -1;
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Infinity })) {
    lineNumber += 1;
    if (!line.trim()) continue;
    let parsed: {
      custom_id?: unknown;
      response?: {
        status_code?: number;
        body?: { created?: number; choices?: { message?: { content?: string | null } }[] };
      } | null;
      error?: { code?: string; message?: string } | null;
    };
    try {
      parsed = JSON.parse(line) as typeof parsed;
    } catch {
      continue;
    }
    if (typeof parsed.custom_id !== 'string') continue;
    const ok = !parsed.error && parsed.response?.status_code === 200;
    const previous = results.get(parsed.custom_id);
    if (previous?.ok && !ok) continue;
    const created = parsed.response?.body?.created;
    results.set(parsed.custom_id, {
      ok,
      output: ok ? (parsed.response?.body?.choices?.[0]?.message?.content ?? '') : null,
      error: ok ? null : { code: parsed.error?.code ?? 'unknown', message: parsed.error?.message ?? '' },
      statusCode: typeof parsed.response?.status_code === 'number' ? parsed.response.status_code : null,
      ...(ok && typeof created === 'number' ? { created } : {}),
      lineNumber,
    });
  }
  return results;
}

/**
 * Writes an output file in the requested format, atomically (a temporary
 * file renamed over it), and returns how many entries it holds. OpenAI
 * format: the chosen output or error line of every item, copied from the
 * results file. AlpacaEval: `[{instruction, output, generator, dataset}]`
 * for every answered item, in input order, each output stripped as the
 * reference implementation strips it. Prompts: one `{prompt, output, error}`
 * JSON line per input line. MT-Bench: FastChat's `model_answer` lines for
 * every question with all turns answered.
 */
export async function writeOutput(options: {
  path: string;
  format: BatchFormat;
  input: ParsedInput;
  results: Map<string, ItemResult>;
  resultsFile: string;
  generator: string;
}): Promise<number> {
  const { path, format, input, results } = options;
  if ((input.format === 'mt-bench') !== (format === 'mt-bench')) {
    throw new Error(`${input.format} input cannot be written as ${format}`);
  }
  const temporary = `${path}.tmp`;
  const stream = createWriteStream(temporary);
  const write = async (text: string) => {
    if (!stream.write(text)) await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
  };
  let entries = 0;
  if (input.format === 'mt-bench') {
    for (const line of mtBenchAnswerLines(input.questions, options.generator, results)) {
      await write(`${line}\n`);
      entries += 1;
    }
  } else if (format === 'openai') {
    const wanted = new Set<number>();
    for (const item of input.items) {
      const result = results.get(item.customId);
      if (result) wanted.add(result.lineNumber);
    }
    let lineNumber = -1;
    if (existsSync(options.resultsFile)) {
      for await (const line of createInterface({
        input: createReadStream(options.resultsFile),
        crlfDelay: Infinity,
      })) {
        lineNumber += 1;
        if (wanted.has(lineNumber)) {
          await write(`${line}\n`);
          entries += 1;
        }
      }
    }
  } else if (format === 'alpaca') {
    await write('[');
    for (const item of input.items) {
      const result = results.get(item.customId);
      if (!result?.ok) continue;
      const entry = {
        instruction: item.prompt,
        output: pythonStrip(result.output ?? ''),
        generator: options.generator,
        dataset: item.dataset,
      };
      await write(`${entries === 0 ? '\n' : ',\n'}  ${JSON.stringify(entry)}`);
      entries += 1;
    }
    await write(entries === 0 ? ']\n' : '\n]\n');
  } else {
    for (const item of input.items) {
      const result = results.get(item.customId);
      await write(
        `${JSON.stringify({ prompt: item.prompt, output: result?.ok ? result.output : null, error: result?.error ?? null })}\n`,
      );
      entries += 1;
    }
  }
  await new Promise<void>((resolve, reject) =>
    stream.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  renameSync(temporary, path);
  return entries;
}

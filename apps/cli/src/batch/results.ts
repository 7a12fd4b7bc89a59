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
import type { BatchFormat, BatchItem } from './formats.js';

/** What the results file says about one item: the best line seen for it (an answer beats an error). */
export interface ItemResult {
  ok: boolean;
  output: string | null;
  error: { code: string; message: string } | null;
  /** 0-based line of the results file holding it. */
  lineNumber: number;
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
      response?: { status_code?: number; body?: { choices?: { message?: { content?: string } }[] } } | null;
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
    results.set(parsed.custom_id, {
      ok,
      output: ok ? (parsed.response?.body?.choices?.[0]?.message?.content ?? '') : null,
      error: ok ? null : { code: parsed.error?.code ?? 'unknown', message: parsed.error?.message ?? '' },
      lineNumber,
    });
  }
  return results;
}

/**
 * Writes OUT in the requested format, atomically (a temporary file renamed
 * over it). OpenAI format: the chosen output or error line of every item,
 * copied from the results file. AlpacaEval: `[{instruction, output,
 * generator, dataset}]` for every answered item, in input order. Prompts:
 * one `{prompt, output, error}` JSON line per input line.
 */
export async function writeOutput(options: {
  out: string;
  format: BatchFormat;
  items: BatchItem[];
  results: Map<string, ItemResult>;
  resultsFile: string;
  generator: string;
}): Promise<void> {
  const { out, format, items, results } = options;
  const temporary = `${out}.tmp`;
  const stream = createWriteStream(temporary);
  const write = async (text: string) => {
    if (!stream.write(text)) await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
  };
  if (format === 'openai') {
    const wanted = new Set<number>();
    for (const item of items) {
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
        if (wanted.has(lineNumber)) await write(`${line}\n`);
      }
    }
  } else if (format === 'alpaca') {
    await write('[');
    let first = true;
    for (const item of items) {
      const result = results.get(item.customId);
      if (!result?.ok) continue;
      const entry = {
        instruction: item.prompt,
        output: result.output ?? '',
        generator: options.generator,
        dataset: item.dataset,
      };
      await write(`${first ? '\n' : ',\n'}  ${JSON.stringify(entry)}`);
      first = false;
    }
    await write(first ? ']\n' : '\n]\n');
  } else {
    for (const item of items) {
      const result = results.get(item.customId);
      await write(
        `${JSON.stringify({ prompt: item.prompt, output: result?.ok ? result.output : null, error: result?.error ?? null })}\n`,
      );
    }
  }
  await new Promise<void>((resolve, reject) =>
    stream.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  renameSync(temporary, out);
}

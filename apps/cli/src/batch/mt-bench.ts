import { createHash } from 'node:crypto';
import { CliError } from '../api.js';
import type { BatchRequest, ItemResult } from './results.js';
import { pythonStrip } from '@moa-queue/moa';

/** One question of FastChat's `question.jsonl`: `{question_id, category, turns: [t1, t2], reference?}`. */
export interface MtBenchQuestion {
  questionId: number | string;
  category: string | null;
  turns: string[];
  /** The sampling temperature FastChat uses for this question, when it sets one. */
  temperature: number | undefined;
}

/**
 * FastChat's `temperature_config` (`fastchat/llm_judge/common.py`): the
 * temperature `gen_model_answer.py`, `gen_api_answer.py` and the MoA
 * reference's `generate_for_mt_bench.py` use for each category.
 */
export const MT_BENCH_TEMPERATURES: Readonly<Record<string, number>> = Object.freeze({
  writing: 0.7,
  roleplay: 0.7,
  extraction: 0.0,
  math: 0.0,
  coding: 0.0,
  reasoning: 0.0,
  stem: 0.1,
  humanities: 0.1,
  'arena-hard-200': 0.0,
});

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Whether a parsed JSONL line looks like an MT-Bench question (how `moa batch` tells the format). */
export function looksLikeMtBenchQuestion(value: unknown): boolean {
  return isRecord(value) && 'question_id' in value && Array.isArray(value.turns);
}

/** Parses FastChat's `question.jsonl`; blank lines are skipped. */
export function parseMtBenchQuestions(text: string): MtBenchQuestion[] {
  const seen = new Set<string>();
  const questions: MtBenchQuestion[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, index) => {
    if (!line.trim()) return;
    const where = `line ${index + 1} of the MT-Bench questions`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new CliError(`${where} is not JSON: ${(error as Error).message}`, 2);
    }
    if (!isRecord(value)) throw new CliError(`${where} is not a JSON object`, 2);
    const id = value.question_id;
    if (!(typeof id === 'string' && id !== '') && !(typeof id === 'number' && Number.isFinite(id))) {
      throw new CliError(`${where} has no question_id (a number or a string)`, 2);
    }
    const key = JSON.stringify(id);
    if (seen.has(key)) throw new CliError(`question_id ${key} appears twice`, 2);
    seen.add(key);
    const turns = value.turns;
    if (!Array.isArray(turns) || turns.length === 0 || !turns.every((turn) => typeof turn === 'string')) {
      throw new CliError(`${where} needs "turns": a non-empty array of strings`, 2);
    }
    const category = typeof value.category === 'string' ? value.category : null;
    const required = value.required_temperature;
    if (required !== undefined && (typeof required !== 'number' || !(required >= 0 && required <= 2))) {
      throw new CliError(`${where}: required_temperature must be a number from 0 to 2`, 2);
    }
    questions.push({
      questionId: id,
      category,
      turns: turns as string[],
      temperature:
        typeof required === 'number'
          ? required
          : category !== null && Object.hasOwn(MT_BENCH_TEMPERATURES, category)
            ? MT_BENCH_TEMPERATURES[category]
            : undefined,
    });
  });
  return questions;
}

/** The custom_id of turn `turn` (1-based) of a question. */
export function mtBenchCustomId(question: MtBenchQuestion, turn: number): string {
  return `mt-bench:${JSON.stringify(question.questionId)}:turn-${turn}`;
}

/** The answer of a finished turn as it goes into the history and the answer file: stripped as the reference does. */
function turnAnswer(result: ItemResult): string {
  return pythonStrip(result.output ?? '');
}

/**
 * The request of turn `turn` (1-based): the conversation so far, every
 * earlier turn followed by the MoA's own (stripped) answer to it, as the
 * reference's `generate_for_mt_bench.py` builds it, then this turn.
 */
function turnRequest(
  question: MtBenchQuestion,
  turn: number,
  preset: string,
  results: Map<string, ItemResult>,
): BatchRequest {
  const messages: { role: 'user' | 'assistant'; content: string }[] = [];
  for (let index = 0; index < turn - 1; index += 1) {
    messages.push({ role: 'user', content: question.turns[index]! });
    messages.push({
      role: 'assistant',
      content: turnAnswer(results.get(mtBenchCustomId(question, index + 1))!),
    });
  }
  messages.push({ role: 'user', content: question.turns[turn - 1]! });
  const customId = mtBenchCustomId(question, turn);
  return {
    customId,
    line: JSON.stringify({
      custom_id: customId,
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: preset,
        messages,
        ...(question.temperature === undefined ? {} : { temperature: question.temperature }),
      },
    }),
  };
}

/**
 * The next request of each question: its first turn without an answer, once
 * every earlier turn has one. A question whose earlier turn has no answer
 * has nothing to send (turn 2 needs turn 1's answer).
 */
export function mtBenchNextRequests(
  questions: MtBenchQuestion[],
  preset: string,
  results: Map<string, ItemResult>,
): BatchRequest[] {
  const requests: BatchRequest[] = [];
  for (const question of questions) {
    for (let turn = 1; turn <= question.turns.length; turn += 1) {
      if (results.get(mtBenchCustomId(question, turn))?.ok) continue;
      requests.push(turnRequest(question, turn, preset, results));
      break;
    }
  }
  return requests;
}

/** Everything that decides a run's requests: another value starts over. */
export function mtBenchHashBasis(questions: MtBenchQuestion[], preset: string): string {
  return JSON.stringify({
    format: 'mt-bench',
    preset,
    questions: questions.map((question) => [
      question.questionId,
      question.turns,
      question.temperature ?? null,
    ]),
  });
}

const SHORTUUID_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

/** A 22-character id in `shortuuid`'s alphabet (as FastChat's answer_id), derived from `seed` so a rewrite keeps it. */
function answerId(seed: string): string {
  let value = BigInt(`0x${createHash('sha256').update(seed).digest('hex').slice(0, 32)}`);
  const base = BigInt(SHORTUUID_ALPHABET.length);
  let id = '';
  for (let index = 0; index < 22; index += 1) {
    id += SHORTUUID_ALPHABET[Number(value % base)];
    value /= base;
  }
  return id;
}

/** A sort of question ids as Python's `sorted()` orders them (FastChat's `reorg_answer_file`), when they are of one type. */
function byQuestionId(questions: MtBenchQuestion[]): MtBenchQuestion[] {
  const ids = questions.map((question) => question.questionId);
  if (ids.every((id) => typeof id === 'number')) {
    return [...questions].sort((a, b) => (a.questionId as number) - (b.questionId as number));
  }
  if (ids.every((id) => typeof id === 'string')) {
    return [...questions].sort((a, b) =>
      a.questionId < b.questionId ? -1 : a.questionId > b.questionId ? 1 : 0,
    );
  }
  return questions;
}

/**
 * FastChat's `model_answer` lines, `{question_id, answer_id, model_id,
 * choices: [{index: 0, turns: [..]}], tstamp}`, for every question whose
 * turns all have an answer, sorted by question id as FastChat's
 * `reorg_answer_file` leaves them. `tstamp` is when the last turn was
 * answered (seconds, as Python's `time.time()`).
 */
export function mtBenchAnswerLines(
  questions: MtBenchQuestion[],
  modelId: string,
  results: Map<string, ItemResult>,
): string[] {
  const lines: string[] = [];
  for (const question of byQuestionId(questions)) {
    const turnResults = question.turns.map((_, index) => results.get(mtBenchCustomId(question, index + 1)));
    if (!turnResults.every((result) => result?.ok)) continue;
    const turns = turnResults.map((result) => turnAnswer(result!));
    const last = turnResults.at(-1)!;
    lines.push(
      JSON.stringify({
        question_id: question.questionId,
        answer_id: answerId(JSON.stringify([modelId, question.questionId, turns])),
        model_id: modelId,
        choices: [{ index: 0, turns }],
        tstamp: last.created ?? Date.now() / 1000,
      }),
    );
  }
  return lines;
}

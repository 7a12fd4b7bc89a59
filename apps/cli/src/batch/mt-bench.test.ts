import { describe, expect, it } from 'vitest';
import { CliError } from '../api.js';
import { parseInput } from './formats.js';
import {
  mtBenchAnswerLines,
  mtBenchCustomId,
  mtBenchNextRequests,
  parseMtBenchQuestions,
  type MtBenchQuestion,
} from './mt-bench.js';
import type { ItemResult } from './results.js';

// Two lines of FastChat's data/mt_bench/question.jsonl, as they are there.
const QUESTIONS = [
  '{"question_id": 81, "category": "writing", "turns": ["Compose an engaging travel blog post about a recent trip to Hawaii, highlighting cultural experiences and must-see attractions.", "Rewrite your previous response. Start every sentence with the letter A."]}',
  '{"question_id": 111, "category": "math", "turns": ["The vertices of a triangle are at points (0, 0), (-1, 1), and (3, 3). What is the area of the triangle?", "What\'s area of the circle circumscribing the triangle?"], "reference": ["Area is 3", "5pi"]}',
].join('\n');

const answered = (output: string, created = 1_764_000_000): ItemResult => ({
  ok: true,
  output,
  error: null,
  statusCode: 200,
  created,
  lineNumber: 0,
});

describe('MT-Bench questions', () => {
  it('are told by content and parsed with FastChat temperatures', () => {
    const parsed = parseInput(`${QUESTIONS}\n\n`, undefined);
    expect(parsed.format).toBe('mt-bench');
    const questions = (parsed as { questions: MtBenchQuestion[] }).questions;
    expect(
      questions.map((question) => [question.questionId, question.category, question.temperature]),
    ).toEqual([
      [81, 'writing', 0.7],
      [111, 'math', 0],
    ]);
    expect(questions[1]!.turns).toHaveLength(2);
    const other = parseMtBenchQuestions(
      '{"question_id": "a", "category": "new", "turns": ["x"]}\n{"question_id": "b", "turns": ["y"], "required_temperature": 0.3}',
    );
    expect(other.map((question) => question.temperature)).toEqual([undefined, 0.3]);
  });

  it('refuse malformed lines as usage errors', () => {
    const usage = (text: string) => {
      try {
        parseMtBenchQuestions(text);
      } catch (error) {
        expect(error).toBeInstanceOf(CliError);
        return `${(error as CliError).exitCode}: ${(error as Error).message}`;
      }
      throw new Error('no error');
    };
    expect(usage('{"question_id": 1, "turns": []}')).toMatch(/^2: line 1 .*turns/);
    expect(usage('{"question_id": 1, "turns": ["a"]}\n{"question_id": 1, "turns": ["b"]}')).toBe(
      '2: question_id 1 appears twice',
    );
    expect(usage('{"question_id": null, "turns": ["a"]}')).toMatch(/question_id/);
    expect(usage('{"question_id": 1, "turns": ["a"]}\nnot json')).toMatch(/^2: line 2 .* not JSON/);
  });

  it('send turn 1 first, then turn 2 with the stripped turn-1 answer in the history', () => {
    const questions = parseMtBenchQuestions(QUESTIONS);
    const results = new Map<string, ItemResult>();
    const first = mtBenchNextRequests(questions, 'moa', results);
    expect(first.map((request) => request.customId)).toEqual(['mt-bench:81:turn-1', 'mt-bench:111:turn-1']);
    expect(JSON.parse(first[1]!.line)).toEqual({
      custom_id: 'mt-bench:111:turn-1',
      method: 'POST',
      url: '/v1/chat/completions',
      body: {
        model: 'moa',
        messages: [{ role: 'user', content: questions[1]!.turns[0] }],
        temperature: 0,
      },
    });

    results.set(mtBenchCustomId(questions[0]!, 1), answered('\n  Aloha from Hawaii.\n\n'));
    results.set(mtBenchCustomId(questions[1]!, 1), {
      ...answered(''),
      ok: false,
      output: null,
      statusCode: 502,
    });
    const second = mtBenchNextRequests(questions, 'moa', results);
    // Question 111's turn 1 is still unanswered, so it is what that question sends next.
    expect(second.map((request) => request.customId)).toEqual(['mt-bench:81:turn-2', 'mt-bench:111:turn-1']);
    expect((JSON.parse(second[0]!.line) as { body: { messages: unknown } }).body.messages).toEqual([
      { role: 'user', content: questions[0]!.turns[0] },
      { role: 'assistant', content: 'Aloha from Hawaii.' },
      { role: 'user', content: questions[0]!.turns[1] },
    ]);
  });

  it('are written as FastChat model answers, complete questions only, sorted by question_id', () => {
    const questions = parseMtBenchQuestions(
      `{"question_id": 111, "turns": ["q1", "q2"]}\n{"question_id": 81, "turns": ["p1", "p2"]}\n{"question_id": 90, "turns": ["r1", "r2"]}`,
    );
    const results = new Map<string, ItemResult>([
      ['mt-bench:111:turn-1', answered('a1 ')],
      ['mt-bench:111:turn-2', answered(' a2', 1_764_000_123.5)],
      ['mt-bench:81:turn-1', answered('b1')],
      ['mt-bench:81:turn-2', answered('b2\n')],
      ['mt-bench:90:turn-1', answered('c1')],
    ]);
    const lines = mtBenchAnswerLines(questions, 'moa-lite', results).map(
      (line) => JSON.parse(line) as Record<string, unknown>,
    );
    expect(lines.map((line) => line.question_id)).toEqual([81, 111]);
    expect(Object.keys(lines[1]!)).toEqual(['question_id', 'answer_id', 'model_id', 'choices', 'tstamp']);
    expect(lines[1]).toMatchObject({
      question_id: 111,
      model_id: 'moa-lite',
      choices: [{ index: 0, turns: ['a1', 'a2'] }],
      tstamp: 1_764_000_123.5,
    });
    expect(lines[1]!.answer_id).toMatch(/^[2-9A-HJ-NP-Za-km-z]{22}$/);
    // The same answers give the same answer_id on a rewrite.
    expect(JSON.parse(mtBenchAnswerLines(questions, 'moa-lite', results)[1]!).answer_id).toBe(
      lines[1]!.answer_id,
    );
  });
});

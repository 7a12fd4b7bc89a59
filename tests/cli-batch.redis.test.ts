import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BUILT_IN_PROVIDERS } from '@moa-queue/moa';
import { REPOSITORY_ROOT } from '@moa-queue/test-support';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stackConfigFile, startMoaStack, type MoaStack } from './support/moa-stack.js';

interface CliRun {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForStderr(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string>;
}

/** Runs the committed launcher `apps/cli/bin/moa.js` as a real child process, from the sources. */
function moa(args: string[], env: Record<string, string>): CliRun {
  const child = spawn(process.execPath, [join(REPOSITORY_ROOT, 'apps/cli/bin/moa.js'), ...args], {
    cwd: REPOSITORY_ROOT,
    env: { ...process.env, MOA_CLI_FROM_SOURCE: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: { predicate: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  let pending = { out: '', err: '' };
  const split = (which: 'out' | 'err', chunk: Buffer, lines: string[]) => {
    pending[which] += chunk.toString();
    const parts = pending[which].split('\n');
    pending[which] = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      if (which === 'err') {
        for (const waiter of [...waiters]) {
          if (waiter.predicate(line)) {
            waiters.splice(waiters.indexOf(waiter), 1);
            waiter.resolve(line);
          }
        }
      }
    }
  };
  child.stdout!.on('data', (chunk: Buffer) => split('out', chunk, stdout));
  child.stderr!.on('data', (chunk: Buffer) => split('err', chunk, stderr));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      if (pending.out) stdout.push(pending.out);
      if (pending.err) stderr.push(pending.err);
      pending = { out: '', err: '' };
      resolve({ code, signal });
    }),
  );
  return {
    child,
    stdout,
    stderr,
    done,
    waitForStderr(predicate, timeoutMs = 60_000) {
      const existing = stderr.find(predicate);
      if (existing) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching stderr line; got:\n${stderr.join('\n')}`)),
          timeoutMs,
        );
        waiters.push({ predicate, resolve: (line) => (clearTimeout(timer), resolve(line)) });
      });
    },
  };
}

async function finished(run: CliRun) {
  const result = await run.done;
  return { ...result, stdout: run.stdout.join('\n'), stderr: run.stderr.join('\n') };
}

describe('the moa CLI against a running stack', () => {
  let stack: MoaStack;
  let client: OpenAI;
  let env: Record<string, string>;
  let directory: string;

  beforeAll(async () => {
    stack = await startMoaStack({ name: 'cli-batch', redisUrl: inject('redisUrl'), workers: 2 });
    const url = await stack.listen();
    client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    // A trailing /v1 is accepted.
    env = { MOA_API_URL: `${url}/v1`, MOA_POLL_INTERVAL_MS: '100' };
    directory = mkdtempSync(join(tmpdir(), 'moa-cli-'));
  });
  afterAll(async () => {
    await stack?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  const cliBatches = async () =>
    (await client.batches.list({ limit: 100 })).data.filter((batch) => batch.metadata?.moa_cli_input);

  it('prints its usage through the workspace bin, as npx moa runs it', async () => {
    const child = spawn(join(REPOSITORY_ROOT, 'node_modules/.bin/moa'), ['--help'], {
      cwd: REPOSITORY_ROOT,
      env: { ...process.env, MOA_CLI_FROM_SOURCE: '1' },
    });
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
    expect(text).toContain('moa batch IN -o OUT');
  });

  it('turns an AlpacaEval array into model outputs, field by field; a re-run is a no-op', async () => {
    const instructions = Array.from({ length: 12 }, (_, index) => ({
      instruction: `Alpaca instruction number ${index}: explain queues`,
      ...(index % 3 === 0 ? {} : { dataset: index % 2 ? 'helpful_base' : 'oasst' }),
    }));
    const input = join(directory, 'alpaca_eval.json');
    const out = join(directory, 'model_outputs.json');
    writeFileSync(input, JSON.stringify(instructions, null, 2));
    const result = await finished(moa(['batch', input, '-o', out, '--preset', 'three'], env));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/progress: 12\/12 done \(0 failed\)/);
    expect(result.stderr).toMatch(/\$\d+\.\d{4}/);
    const outputs = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>[];
    expect(outputs).toHaveLength(12);
    outputs.forEach((entry, index) => {
      expect(Object.keys(entry).sort()).toEqual(['dataset', 'generator', 'instruction', 'output']);
      expect(entry.instruction).toBe(instructions[index]!.instruction);
      expect(entry.generator).toBe('three');
      expect(entry.dataset).toBe(instructions[index]!.dataset ?? null);
      expect(typeof entry.output).toBe('string');
      expect((entry.output as string).length).toBeGreaterThan(0);
      // The answer is the aggregator's answer to this very instruction.
      const aggregatorCalls = stack.fake.requests.filter(
        (recorded) =>
          recorded.model === 'aggregator' &&
          recorded.messages.some((message) => message.content === entry.instruction),
      );
      expect(aggregatorCalls.length).toBeGreaterThan(0);
    });
    const batches = (await cliBatches()).length;

    const providerCalls = stack.fake.requests.length;
    const again = await finished(moa(['batch', input, '-o', out, '--preset', 'three'], env));
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('nothing to do');
    expect(stack.fake.requests.length).toBe(providerCalls);
    expect((await cliBatches()).length).toBe(batches);
  });

  it('answers plain prompts line by line, and OpenAI batch JSONL in its own format', async () => {
    const prompts = ['What is a queue?', 'Name a prime number.', 'Say hello.'];
    const input = join(directory, 'prompts.txt');
    const out = join(directory, 'answers.jsonl');
    writeFileSync(input, `${prompts.join('\n')}\n\n`);
    const plain = await finished(moa(['batch', input, '-o', out, '--preset', 'three'], env));
    expect(plain.code, plain.stderr).toBe(0);
    const answers = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(answers.map((answer) => answer.prompt)).toEqual(prompts);
    for (const answer of answers) {
      expect(typeof answer.output).toBe('string');
      expect(answer.error).toBeNull();
    }

    const lines = ['alpha', 'beta'].map((id) =>
      JSON.stringify({
        custom_id: id,
        method: 'POST',
        url: '/v1/chat/completions',
        body: { model: 'three', messages: [{ role: 'user', content: `openai format ${id}` }] },
      }),
    );
    const openaiInput = join(directory, 'requests.jsonl');
    const openaiOut = join(directory, 'results.jsonl');
    writeFileSync(openaiInput, lines.join('\n'));
    const openaiRun = await finished(moa(['batch', openaiInput, '-o', openaiOut], env));
    expect(openaiRun.code, openaiRun.stderr).toBe(0);
    const results = readFileSync(openaiOut, 'utf8')
      .trim()
      .split('\n')
      .map(
        (line) =>
          JSON.parse(line) as {
            custom_id: string;
            response: { status_code: number; body: { object: string } };
          },
      );
    expect(results.map((line) => line.custom_id).sort()).toEqual(['alpha', 'beta']);
    expect(
      results.every(
        (line) => line.response.status_code === 200 && line.response.body.object === 'chat.completion',
      ),
    ).toBe(true);

    // The same results, as AlpacaEval, without running anything again.
    const providerCalls = stack.fake.requests.length;
    const converted = await finished(moa(['batch', openaiInput, '-o', openaiOut, '--format', 'alpaca'], env));
    expect(converted.code, converted.stderr).toBe(0);
    expect(stack.fake.requests.length).toBe(providerCalls);
    const alpaca = JSON.parse(readFileSync(openaiOut, 'utf8')) as {
      instruction: string;
      generator: string;
    }[];
    expect(alpaca.map((entry) => entry.instruction)).toEqual(['openai format alpha', 'openai format beta']);
    expect(alpaca[0]!.generator).toBe('three');
  });

  it('resumes the same batch after being killed mid-poll, without submitting it twice', async () => {
    const input = join(directory, 'resume.txt');
    const out = join(directory, 'resume.jsonl');
    writeFileSync(input, Array.from({ length: 120 }, (_, index) => `resumable prompt ${index}`).join('\n'));
    const first = moa(['batch', input, '-o', out, '--preset', 'three'], env);
    const submitted = await first.waitForStderr((line) => line.startsWith('submitted batch'));
    await first.waitForStderr((line) => line.startsWith('progress:'));
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    expect(existsSync(out)).toBe(false);
    const batchId = /submitted batch (batch_\w+)/.exec(submitted)![1]!;

    const second = await finished(moa(['batch', input, '-o', out, '--preset', 'three'], env));
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`following batch ${batchId}`);
    expect(second.stderr).not.toContain('submitted batch');
    const answers = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { prompt: string; output: string });
    expect(answers).toHaveLength(120);
    expect(
      answers.every((answer, index) => answer.prompt === `resumable prompt ${index}` && answer.output),
    ).toBe(true);
    const all = await cliBatches();
    const tag = all.find((batch) => batch.id === batchId)?.metadata?.moa_cli_input;
    expect(all.filter((batch) => batch.metadata?.moa_cli_input === tag).map((batch) => batch.id)).toEqual([
      batchId,
    ]);
  });

  it('after a cancelled batch, a re-run submits only the items still missing', async () => {
    const input = join(directory, 'partial.txt');
    const out = join(directory, 'partial.jsonl');
    writeFileSync(input, Array.from({ length: 150 }, (_, index) => `partial prompt ${index}`).join('\n'));
    stack.fake.setBehaviour('*', { latencyMs: 150 });
    try {
      const first = moa(['batch', input, '-o', out, '--preset', 'three'], env);
      const submitted = await first.waitForStderr((line) => line.startsWith('submitted batch'));
      const batchId = /submitted batch (batch_\w+)/.exec(submitted)![1]!;
      for (;;) {
        const batch = await client.batches.retrieve(batchId);
        if ((batch.request_counts?.completed ?? 0) >= 2) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await client.batches.cancel(batchId);
      const result = await finished(first);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /\d+ not run \(cancelled, expired or interrupted\)\. Re-run the same command to run them/,
      );
      const partial = readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { output: string | null; error: { code: string } | null });
      const answered = partial.filter((line) => line.output !== null).length;
      expect(answered).toBeGreaterThanOrEqual(2);
      expect(answered).toBeLessThan(150);
      expect(
        partial
          .filter((line) => line.output === null)
          .every((line) => line.error?.code === 'batch_cancelled'),
      ).toBe(true);
    } finally {
      stack.fake.setBehaviour('*', undefined);
    }
    const second = await finished(moa(['batch', input, '-o', out, '--preset', 'three'], env));
    expect(second.code, second.stderr).toBe(0);
    const resubmitted = /submitted batch (batch_\w+): (\d+) items/.exec(second.stderr);
    const answers = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { prompt: string; output: string });
    expect(
      answers.every((answer, index) => answer.prompt === `partial prompt ${index}` && answer.output),
    ).toBe(true);
    const retried = await client.batches.retrieve(resubmitted![1]!);
    expect(Number(resubmitted![2])).toBeLessThan(150);
    expect(retried.request_counts?.total).toBe(Number(resubmitted![2]));
  });

  /** The fake's recorded aggregator requests whose last message is this user text. */
  const aggregatorCallsFor = (text: string) =>
    stack.fake.requests.filter(
      (recorded) => recorded.model === 'aggregator' && recorded.messages.at(-1)?.content === text,
    );
  /** Every batch input line a `moa batch … -o out` run submitted, round by round, read back from the API. */
  const batchInputLines = async (out: string) => {
    const state = JSON.parse(readFileSync(`${out}.moa-state.json`, 'utf8')) as {
      rounds: { inputFileId: string }[];
    };
    const lines: { custom_id: string; body: { temperature?: number } }[] = [];
    for (const round of state.rounds) {
      const text = await (await client.files.content(round.inputFileId)).text();
      for (const line of text.trim().split('\n')) lines.push(JSON.parse(line) as (typeof lines)[number]);
    }
    return lines;
  };
  const nonSystem = (messages: { role: string; content: string }[]) =>
    messages.filter((message) => message.role !== 'system');

  it('never writes a partial AlpacaEval file as complete; --retry-failed completes it, outputs stripped', async () => {
    const instructions = Array.from({ length: 8 }, (_, index) => ({
      instruction: `Partial alpaca instruction ${index}: describe a lighthouse`,
      dataset: 'helpful_base',
    }));
    const input = join(directory, 'alpaca_partial.json');
    const out = join(directory, 'alpaca_partial_outputs.json');
    writeFileSync(input, JSON.stringify(instructions));
    // Every answer comes padded with whitespace; the reference strips it (Python's str.strip()).
    stack.fake.setBehaviour('aggregator', { content: '\n\n  A lighthouse guides ships.\u2003\n\t ' });
    try {
      // The next two aggregator calls fail (a 400 is not retried): two items fail.
      stack.fake.script(
        'aggregator',
        { status: 400, message: 'scripted failure one' },
        { status: 400, message: 'scripted failure two' },
      );
      const first = await finished(moa(['batch', input, '-o', out, '--preset', 'three'], env));
      expect(first.code, first.stderr).toBe(3);
      expect(first.stderr).toMatch(/progress: 8\/8 done \(2 failed\)/);
      expect(first.stderr).toContain(`wrote ${out}.partial.json instead of ${out}: 6 of 8 items answered`);
      expect(first.stderr).toMatch(/2 failed \(e\.g\. \d: .*scripted failure/);
      expect(first.stderr).toContain('re-run with --retry-failed to retry them');
      expect(existsSync(out)).toBe(false);
      const partial = JSON.parse(readFileSync(`${out}.partial.json`, 'utf8')) as {
        instruction: string;
        output: string;
      }[];
      expect(partial).toHaveLength(6);
      expect(partial.every((entry) => entry.output === 'A lighthouse guides ships.')).toBe(true);

      // A plain re-run pays for nothing: the failed items wait for --retry-failed.
      const calls = stack.fake.requests.length;
      const batches = (await cliBatches()).length;
      const again = await finished(moa(['batch', input, '-o', out, '--preset', 'three'], env));
      expect(again.code, again.stderr).toBe(3);
      expect(again.stderr).not.toContain('submitted batch');
      expect(stack.fake.requests.length).toBe(calls);
      expect((await cliBatches()).length).toBe(batches);
      expect(existsSync(out)).toBe(false);

      const retried = await finished(
        moa(['batch', input, '-o', out, '--preset', 'three', '--retry-failed'], env),
      );
      expect(retried.code, retried.stderr).toBe(0);
      expect(retried.stderr).toMatch(
        /submitted batch batch_\w+: 2 items \(alpaca input; retrying 2 failed\)/,
      );
      expect(retried.stderr).toContain(`wrote ${out}: 8 items`);
      expect(existsSync(`${out}.partial.json`)).toBe(false);
      const outputs = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>[];
      expect(outputs.map((entry) => entry.instruction)).toEqual(
        instructions.map((entry) => entry.instruction),
      );
      for (const entry of outputs) {
        expect(entry).toEqual({
          instruction: entry.instruction,
          output: 'A lighthouse guides ships.',
          generator: 'three',
          dataset: 'helpful_base',
        });
      }
      // Each instruction was answered by exactly one successful aggregator call: nothing paid twice.
      for (const { instruction } of instructions) {
        expect(aggregatorCallsFor(instruction).filter((recorded) => recorded.status === 200)).toHaveLength(1);
      }
    } finally {
      stack.fake.setBehaviour('aggregator', undefined);
    }
    const calls = stack.fake.requests.length;
    for (const extra of [[], ['--retry-failed']]) {
      const noop = await finished(moa(['batch', input, '-o', out, '--preset', 'three', ...extra], env));
      expect(noop.code).toBe(0);
      expect(noop.stderr).toContain('nothing to do');
    }
    expect(stack.fake.requests.length).toBe(calls);
  });

  it("runs MT-Bench: turn 2 with the MoA's own turn-1 answer, FastChat answer lines, --retry-failed", async () => {
    const questions = [
      { question_id: 101, category: 'writing', turns: ['MT writing turn one?', 'MT writing turn two?'] },
      {
        question_id: 93,
        category: 'math',
        turns: ['MT math turn one?', 'MT math turn two?'],
        reference: ['4', '8'],
      },
      { question_id: 140, category: 'coding', turns: ['MT coding turn one?', 'MT coding turn two?'] },
    ];
    const input = join(directory, 'question.jsonl');
    const out = join(directory, 'model_answer', 'moa-three.jsonl');
    writeFileSync(input, `${questions.map((question) => JSON.stringify(question)).join('\n')}\n`);
    // Turn 1's three aggregator calls answer; the first of turn 2 fails.
    stack.fake.script('aggregator', { latencyMs: 0 }, { latencyMs: 0 }, { latencyMs: 0 }, { status: 400 });
    const first = await finished(
      moa(['batch', input, '-o', out, '--preset', 'three', '--format', 'mt-bench'], env),
    );
    expect(first.code, first.stderr).toBe(3);
    expect(first.stderr).toMatch(/submitted batch batch_\w+: 3 items \(mt-bench input; turn 1: 3\)/);
    expect(first.stderr).toMatch(/submitted batch batch_\w+: 3 items \(mt-bench input; turn 2: 3\)/);
    expect(first.stderr).toContain(`wrote ${out}.partial instead of ${out}: 2 of 3 questions answered`);
    expect(existsSync(out)).toBe(false);
    expect(readFileSync(`${out}.partial`, 'utf8').trim().split('\n')).toHaveLength(2);

    const retried = await finished(
      moa(['batch', input, '-o', out, '--preset', 'three', '--retry-failed'], env),
    );
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stderr).toMatch(
      /submitted batch batch_\w+: 1 items \(mt-bench input; turn 2: 1; retrying 1 failed\)/,
    );
    expect(existsSync(`${out}.partial`)).toBe(false);
    const answers = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    // Sorted by question_id, as FastChat's reorg_answer_file leaves them.
    expect(answers.map((answer) => answer.question_id)).toEqual([93, 101, 140]);
    for (const answer of answers) {
      expect(Object.keys(answer)).toEqual(['question_id', 'answer_id', 'model_id', 'choices', 'tstamp']);
      expect(answer.model_id).toBe('three');
      expect(answer.answer_id).toMatch(/^[2-9A-HJ-NP-Za-km-z]{22}$/);
      expect(typeof answer.tstamp).toBe('number');
      const question = questions.find((entry) => entry.question_id === answer.question_id)!;
      const [turn1, turn2] = (answer.choices as { index: number; turns: string[] }[])[0]!.turns;
      expect((answer.choices as unknown[]).length).toBe(1);
      expect(turn1!.length).toBeGreaterThan(0);
      expect(turn2!.length).toBeGreaterThan(0);
      // Turn 1 was asked (and paid) once, on its own.
      const turn1Calls = aggregatorCallsFor(question.turns[0]!);
      expect(turn1Calls).toHaveLength(1);
      expect(nonSystem(turn1Calls[0]!.messages)).toEqual([{ role: 'user', content: question.turns[0] }]);
      // Turn 2 carried the MoA's own turn-1 answer, for the aggregator and every proposer alike.
      const turn2Requests = stack.fake.requests.filter(
        (recorded) => recorded.messages.at(-1)?.content === question.turns[1],
      );
      expect(turn2Requests.length).toBeGreaterThanOrEqual(7);
      for (const recorded of turn2Requests) {
        expect(nonSystem(recorded.messages)).toEqual([
          { role: 'user', content: question.turns[0] },
          { role: 'assistant', content: turn1 },
          { role: 'user', content: question.turns[1] },
        ]);
      }
      const answered = turn2Requests.filter(
        (recorded) => recorded.model === 'aggregator' && recorded.status === 200,
      );
      expect(answered).toHaveLength(1);
    }

    // Every request asked for FastChat's temperature of its category (as the reference does).
    const submittedLines = await batchInputLines(out);
    // Round 1: every turn 1; round 2: every turn 2; round 3: the one turn 2 that failed (whichever came first).
    expect(submittedLines.map((line) => line.custom_id)).toEqual([
      'mt-bench:101:turn-1',
      'mt-bench:93:turn-1',
      'mt-bench:140:turn-1',
      'mt-bench:101:turn-2',
      'mt-bench:93:turn-2',
      'mt-bench:140:turn-2',
      expect.stringMatching(/^mt-bench:(101|93|140):turn-2$/),
    ]);
    const temperatures: Record<string, number> = { '101': 0.7, '93': 0, '140': 0 };
    for (const line of submittedLines) {
      expect(line.body.temperature).toBe(temperatures[/^mt-bench:(\d+):/.exec(line.custom_id)![1]!]);
    }

    // Finished: a no-op; another --model-id rewrites the file from the saved answers, without a call.
    const calls = stack.fake.requests.length;
    const noop = await finished(moa(['batch', input, '-o', out, '--preset', 'three'], env));
    expect(noop.code).toBe(0);
    expect(noop.stderr).toContain('nothing to do');
    const renamed = await finished(
      moa(['batch', input, '-o', out, '--preset', 'three', '--model-id', 'moa-three-fastchat'], env),
    );
    expect(renamed.code, renamed.stderr).toBe(0);
    const relabelled = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { model_id: string; choices: unknown });
    expect(relabelled.every((answer) => answer.model_id === 'moa-three-fastchat')).toBe(true);
    expect(relabelled.map((answer) => answer.choices)).toEqual(answers.map((answer) => answer.choices));
    expect(stack.fake.requests.length).toBe(calls);

    const wrong = await finished(
      moa(['batch', input, '-o', join(directory, 'x.json'), '--format', 'alpaca'], env),
    );
    expect(wrong.code).toBe(2);
  });

  it('resumes MT-Bench after a kill during turn 2 without paying for turn 1 again', async () => {
    const questions = Array.from({ length: 4 }, (_, index) => ({
      question_id: index + 1,
      category: 'stem',
      turns: [`Resume MT turn one, question ${index + 1}?`, `Resume MT turn two, question ${index + 1}?`],
    }));
    const input = join(directory, 'resume_question.jsonl');
    const out = join(directory, 'resume_answers.jsonl');
    writeFileSync(input, questions.map((question) => JSON.stringify(question)).join('\n'));
    stack.fake.setBehaviour('*', { latencyMs: 100 });
    let turn2Batch: string;
    try {
      const first = moa(['batch', input, '-o', out, '--preset', 'three'], env);
      const line = await first.waitForStderr((text) => /submitted batch .*turn 2: 4/.test(text));
      turn2Batch = /submitted batch (batch_\w+)/.exec(line)![1]!;
      first.child.kill('SIGKILL');
      expect((await first.done).signal).toBe('SIGKILL');
    } finally {
      stack.fake.setBehaviour('*', undefined);
    }
    const second = await finished(moa(['batch', input, '-o', out, '--preset', 'three'], env));
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`following batch ${turn2Batch}`);
    expect(second.stderr).not.toContain('submitted batch');
    const answers = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { question_id: number; choices: { turns: string[] }[] });
    expect(answers.map((answer) => answer.question_id)).toEqual([1, 2, 3, 4]);
    for (const question of questions) {
      expect(aggregatorCallsFor(question.turns[0]!)).toHaveLength(1);
      expect(aggregatorCallsFor(question.turns[1]!)).toHaveLength(1);
    }
    const submittedLines = await batchInputLines(out);
    expect(submittedLines).toHaveLength(8);
    expect(submittedLines.every((line) => line.body.temperature === 0.1)).toBe(true);
  });

  it('checks that every preset model is served by its provider: moa models check', async () => {
    // A loopback port nothing listens on.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const deadPort = (server.address() as AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const base = stackConfigFile(stack.fake.url) as {
      providers: Record<string, unknown>;
      presets: Record<string, unknown>;
    };
    // Every built-in provider points at the fake too, so the built-in presets are checked on loopback only.
    const builtIns = Object.fromEntries(
      Object.keys(BUILT_IN_PROVIDERS).map((name) => [
        name,
        { baseURL: stack.fake.url, apiKeyEnv: 'FAKE_PROVIDER_API_KEY' },
      ]),
    );
    const configPath = join(directory, 'models-check.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        ...base,
        providers: { ...base.providers, ...builtIns, down: { baseURL: `http://127.0.0.1:${deadPort}/v1` } },
        presets: {
          ...base.presets,
          unreachable: { layers: [[{ model: 'down/some-model' }]], aggregator: { model: 'fake/aggregator' } },
        },
      }),
    );
    const checkEnv = {
      MOA_CONFIG: configPath,
      FAKE_PROVIDER_API_KEY: stack.environment.FAKE_PROVIDER_API_KEY!,
    };
    const check = (...args: string[]) => finished(moa(['models', 'check', ...args], checkEnv));
    try {
      stack.fake.setModels(['alpha', 'beta', 'gamma', 'aggregator', 'unrelated']);
      const ok = await check('--preset', 'three');
      expect(ok.code, ok.stdout + ok.stderr).toBe(0);
      expect(ok.stdout).toContain(
        `fake: ${stack.fake.url}/models lists 5 models; 4 of 4 preset models served`,
      );
      expect(ok.stdout).toContain('ok: all 4 preset models served (1 provider asked)');

      stack.fake.setModels(['alpha', 'beta', 'aggregator']);
      const missing = await check('--preset', 'three,one-dead');
      expect(missing.code).toBe(1);
      expect(missing.stdout).toContain('missing: fake/dead (presets: one-dead)');
      expect(missing.stdout).toContain('missing: fake/gamma (presets: one-dead, three)');
      expect(missing.stdout).toContain('FAILED: 2 preset models not served');

      const all = await check();
      expect(all.code).toBe(1);
      expect(all.stdout).toContain(
        `down: NOT CHECKED: cannot reach http://127.0.0.1:${deadPort}/v1/models: ECONNREFUSED — 1 preset model unchecked (presets: unreachable)`,
      );
      expect(all.stdout).toMatch(/missing: together\/Qwen\/Qwen2\.5-72B-Instruct-Turbo \(presets: [^)]*moa/);
      expect(all.stdout).toContain('1 provider could not be asked (1 model unchecked)');

      const unknown = await check('--preset', 'no-such-preset');
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('unknown preset "no-such-preset"');
    } finally {
      stack.fake.setModels(undefined);
    }
  });

  it('runs a prompt through the API and locally, and prints a job', async () => {
    const remote = await finished(moa(['run', 'What is MoA?', '--preset', 'three'], env));
    expect(remote.code, remote.stderr).toBe(0);
    expect(remote.stdout.trim().length).toBeGreaterThan(0);
    const jobId = /job (job_\w+) queued/.exec(remote.stderr)![1]!;

    const job = await finished(moa(['jobs', 'get', jobId], env));
    expect(job.code).toBe(0);
    const printed = JSON.parse(job.stdout) as { id: string; status: string; output: string };
    expect(printed).toMatchObject({ id: jobId, status: 'completed', output: remote.stdout.trim() });

    const local = await finished(
      moa(['run', 'What is MoA?', '--preset', 'three', '--local'], {
        MOA_CONFIG: stack.environment.MOA_CONFIG!,
        FAKE_PROVIDER_API_KEY: stack.environment.FAKE_PROVIDER_API_KEY!,
      }),
    );
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout.trim()).toBe(remote.stdout.trim());

    const missing = await finished(moa(['jobs', 'get', 'job_doesnotexist'], env));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404');
  });
});

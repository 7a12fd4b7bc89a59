import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPOSITORY_ROOT } from '@moa-queue/test-support';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, type MoaStack } from './support/moa-stack.js';

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
      expect(result.stderr).toContain('Re-run the same command to retry them');
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

import { createModelRegistry, loadMoaConfig, resolvePreset, runMoa, type MoaEvent } from '@moa-queue/moa';
import { apiJson, apiTarget, CliError } from '../api.js';

interface JobObject {
  id: string;
  status: 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';
  output: string | null;
  cost_usd: number | null;
  layers: { layer: number; role: string; duration_ms: number; calls: unknown[] }[];
  usage: { total_tokens: number };
  error: { message: string } | null;
}

const note = (text: string) => process.stderr.write(`${text}\n`);
const money = (value: number | null) => (value === null ? 'unknown cost' : `$${value.toFixed(6)}`);

async function runRemote(prompt: string, preset: string | undefined): Promise<number> {
  const target = apiTarget();
  const messages = [{ role: 'user', content: prompt }];
  let job = await apiJson<JobObject>(target, 'POST', '/v1/jobs', { ...(preset ? { preset } : {}), messages });
  note(`job ${job.id} queued on ${target.root}`);
  let reported = 0;
  while (!['completed', 'failed', 'cancelled'].includes(job.status)) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    job = await apiJson<JobObject>(target, 'GET', `/v1/jobs/${job.id}`);
    for (const layer of job.layers.slice(reported)) {
      note(`layer ${layer.layer} (${layer.role}): ${layer.calls.length} calls in ${layer.duration_ms} ms`);
    }
    reported = Math.max(reported, job.layers.length);
  }
  if (job.status !== 'completed') {
    note(`job ${job.id} ${job.status}: ${job.error?.message ?? ''}`);
    return 1;
  }
  note(`done: ${job.usage.total_tokens} tokens, ${money(job.cost_usd)}`);
  process.stdout.write(`${job.output ?? ''}\n`);
  return 0;
}

async function runLocal(prompt: string, presetName: string | undefined): Promise<number> {
  const config = loadMoaConfig(process.env.MOA_CONFIG);
  const preset = resolvePreset(config, presetName);
  if (!preset)
    throw new CliError(
      `unknown preset ${JSON.stringify(presetName)}; available: ${Object.keys(config.presets).join(', ')}`,
      2,
    );
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const result = await runMoa({
    preset,
    messages: [{ role: 'user', content: prompt }],
    models: createModelRegistry(config),
    signal: controller.signal,
    onEvent(event: MoaEvent) {
      if (event.type === 'layer_finished') {
        note(
          `layer ${event.layer} (${event.role}): ${event.succeeded} ok, ${event.failed} failed in ${event.durationMs} ms`,
        );
      }
    },
  });
  if (result.status !== 'completed') {
    note(`${result.status}: ${result.error?.message ?? ''}`);
    return 1;
  }
  note(`done: ${result.usage.promptTokens + result.usage.completionTokens} tokens, ${money(result.costUsd)}`);
  process.stdout.write(`${result.output ?? ''}\n`);
  return 0;
}

/** `moa run "prompt" [--preset P] [--local]`. */
export async function runCommand(
  prompt: string | undefined,
  options: { preset?: string; local?: boolean },
): Promise<number> {
  if (!prompt) throw new CliError('usage: moa run "prompt" [--preset P] [--local]', 2);
  return options.local ? runLocal(prompt, options.preset) : runRemote(prompt, options.preset);
}

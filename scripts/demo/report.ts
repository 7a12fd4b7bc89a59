import type { JobView } from '@moa-queue/api';

function pad(text: string, width: number, right = false): string {
  if (text.length > width) return `${text.slice(0, width - 1)}…`;
  return right ? text.padStart(width) : text.padEnd(width);
}

function usd(value: number | null): string {
  return value === null ? 'n/a' : `$${value.toFixed(6)}`;
}

/** Renders a finished job as a per-layer table and its answer. */
export function renderJob(job: JobView, elapsedMs: number): string {
  const lines: string[] = [];
  lines.push(
    `\n${job.id}  preset ${job.preset}  ${job.status.toUpperCase()}  ` +
      `${(elapsedMs / 1000).toFixed(2)} s end to end  ${job.usage.total_tokens} tokens  ${usd(job.cost_usd)}`,
  );
  const header = `  ${pad('layer', 6)}${pad('role', 11)}${pad('model', 46)}${pad('latency', 10, true)}${pad('in', 7, true)}${pad('out', 7, true)}${pad('cost', 12, true)}  status`;
  lines.push(header, `  ${'-'.repeat(header.length - 2)}`);
  for (const layer of job.layers) {
    for (const call of layer.calls) {
      lines.push(
        `  ${pad(String(layer.layer), 6)}${pad(layer.role, 11)}${pad(call.model, 46)}` +
          `${pad(`${call.latency_ms} ms`, 10, true)}${pad(String(call.usage.prompt_tokens), 7, true)}` +
          `${pad(String(call.usage.completion_tokens), 7, true)}${pad(usd(call.cost_usd), 12, true)}  ` +
          `${call.status}${call.error ? ` (${call.error.type})` : ''}`,
      );
    }
    const cost = layer.calls.reduce<number | null>(
      (sum, call) => (sum === null || call.cost_usd === null ? null : sum + call.cost_usd),
      0,
    );
    lines.push(
      `  ${pad('', 6)}${pad(`layer ${layer.layer} total`, 57)}${pad(`${layer.duration_ms} ms`, 10, true)}${pad('', 14)}${pad(usd(cost), 12, true)}`,
    );
  }
  if (job.error) lines.push(`  error: ${job.error.message}`);
  if (job.output)
    lines.push(`  answer: ${job.output.length > 400 ? `${job.output.slice(0, 400)}…` : job.output}`);
  return lines.join('\n');
}

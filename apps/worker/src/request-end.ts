import {
  publishEvent,
  type FileStore,
  type MoaQueues,
  type RequestJobData,
  type WebhookJobData,
} from '@moa-queue/contract';
import type { StopRecord } from '@moa-queue/moa';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { recordBatchItemEnd, type RequestEnd } from './batches/batch-item-hook.js';
import type { MetricLabels } from './metric-labels.js';
import type { WorkerMetrics } from './metrics.js';

/** What ending a request needs. */
export interface RequestEndDependencies {
  queues: MoaQueues;
  /** A plain connection for our own commands. */
  redis: Redis;
  metrics: WorkerMetrics;
  labels: MetricLabels;
  logger: Logger;
  /** Where a batch item's line is spooled before it is recorded. */
  files: FileStore;
  /** How long a batch item's request stays readable after its line (see the batch-item hook). */
  batchItemGraceMs?: number;
}

/** Options of {@link endRequest}. */
export interface EndRequestOptions {
  /**
   * Writes that must land with the end (the final progress, events sent and
   * not yet awaited): awaited together with the `done` event and the webhook.
   */
  writes?: Promise<unknown>[];
}

/**
 * Queues the webhook of a request that is ending, once: the job id is
 * deterministic, so a re-run orchestrator cannot queue a second delivery.
 */
export async function enqueueWebhook(queues: MoaQueues, data: RequestJobData): Promise<void> {
  if (!data.webhook) return;
  await queues.webhooks.add(
    'webhook',
    { requestId: data.requestId, url: data.webhook.url } satisfies WebhookJobData,
    {
      jobId: `${data.requestId}-webhook`,
      // Bounded by webhooks.retryHorizonMs in the processor, not by this count.
      attempts: 10_000,
      backoff: { type: 'webhook' },
    },
  );
}

/** The policy stop of an ending request, if a policy acted. */
function stoppedOf(end: RequestEnd): StopRecord | null {
  return (end.status === 'failed' ? end.progress?.stopped : end.result.stopped) ?? null;
}

/**
 * Ends a request, whatever its outcome (completed, failed, cancelled, cut
 * short by a policy) and whoever ends it (the run that decided its end, or
 * the worker for a job BullMQ failed without running it): the `done` event
 * (not for batch items, which nobody follows), the webhook, the batch item's
 * line, the metrics and the log line. Each write is idempotent, so a run
 * repeated after a Redis error may call it again; the metrics count once per
 * call that got through its writes.
 */
export async function endRequest(
  dependencies: RequestEndDependencies,
  data: RequestJobData,
  end: RequestEnd,
  options: EndRequestOptions = {},
): Promise<void> {
  const { metrics, labels, logger } = dependencies;
  const { status } = end;
  await Promise.all([
    ...(options.writes ?? []),
    data.source === 'batch'
      ? undefined
      : publishEvent(dependencies.redis, dependencies.queues.prefix, data.requestId, {
          type: 'done',
          status,
        }),
    enqueueWebhook(dependencies.queues, data),
  ]);
  await recordBatchItemEnd(dependencies, data, end);
  const preset = labels.preset(data.preset.name);
  metrics.jobsFinished.inc({ preset, outcome: status });
  metrics.jobDuration.observe({ preset, outcome: status }, (Date.now() - data.createdAt) / 1000);
  const stopped = stoppedOf(end);
  if (stopped) metrics.policyStops.inc({ preset, reason: stopped.reason });
  const about = { requestId: data.requestId, preset: data.preset.name, ...(stopped ? { stopped } : {}) };
  if (end.status === 'failed') {
    logger.warn({ ...about, error: end.error }, 'request failed');
    return;
  }
  const { costUsd, usage } = end.result;
  if (costUsd !== null && status === 'completed') metrics.jobCost.observe({ preset }, costUsd);
  logger.info({ ...about, status, costUsd, usage }, 'request finished');
}

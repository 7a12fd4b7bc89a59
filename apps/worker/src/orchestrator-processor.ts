import {
  callJobId,
  cancelKey,
  jobDataSchemasFor,
  deadlineKey,
  CALL_RETENTION_COMPLETED,
  CALL_RETENTION_FAILED,
  isInfrastructureError,
  jobIdFromKey,
  publishEvent,
  type WebhookJobData,
  type CallJobData,
  type FileStore,
  type MoaQueues,
  type RequestJobData,
  type RequestProgress,
  type RequestEvent,
  type RequestResult,
} from '@moa-queue/contract';
import {
  callsCost,
  failedCallRecord,
  finishedLayer,
  layerCount,
  LayerDeadlineError,
  layerShortfall,
  parseModelId,
  planLayer,
  priceOf,
  roleOfLayer,
  totalCost,
  totalUsage,
  type CallRecord,
  type MoaConfig,
  type MoaResult,
  type PlannedCall,
} from '@moa-queue/moa';
import { Job, UnrecoverableError, WaitingChildrenError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { recordBatchItemEnd } from './batches/batch-item-hook.js';
import { isLostJobError } from './infra-retry.js';
import { metricLabelsFor } from './metric-labels.js';
import type { WorkerMetrics } from './metrics.js';
import { expectJobData, parseJobData } from './parse-job-data.js';

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

/** Errors by which BullMQ is told where a job went (delayed, waiting for children), not that it failed. */
const BULLMQ_SIGNALS = new Set(['DelayedError', 'WaitingChildrenError', 'WaitingError', 'RateLimitError']);

/**
 * Whether a run's error ends its request for good, so that the run must
 * write the request's end before it throws: an unrecoverable error, or an
 * ordinary one on the job's last attempt (BullMQ's own rule). Never a Redis
 * error (the worker retries those without spending an attempt), nor a run
 * that lost its job.
 */
export function endsRequest(job: Pick<Job, 'attemptsMade' | 'opts'>, error: unknown): boolean {
  if (error instanceof Error) {
    // A run that lost its job (a stall) ends nothing: the run that holds the job now goes on.
    if (BULLMQ_SIGNALS.has(error.name) || isInfrastructureError(error) || isLostJobError(error)) return false;
    if (error.name === 'UnrecoverableError') return true;
  }
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/** What the orchestrator needs. */
export interface OrchestratorDependencies {
  queues: MoaQueues;
  /** A plain connection with auto-pipelining, for our own commands (not BullMQ's). */
  redis: Redis;
  /** Where a batch item's output or error line goes (see batch-item-hook.ts). */
  files: FileStore;
  config: MoaConfig;
  metrics: WorkerMetrics;
  logger: Logger;
}

/** Reads the progress saved by an earlier run of the same job, if any. */
function savedProgress(progress: unknown): RequestProgress {
  const value = progress as Partial<RequestProgress> | undefined;
  if (value && typeof value === 'object' && Array.isArray(value.layers)) {
    return {
      layers: value.layers,
      currentLayer: value.currentLayer ?? null,
      layerStartedAt: value.layerStartedAt ?? {},
      error: value.error ?? null,
    };
  }
  return { layers: [], currentLayer: null, layerStartedAt: {}, error: null };
}

/**
 * Processes one MoA request (the parent of all its calls). Each run derives
 * where the request stands from the results BullMQ already holds for its
 * children, adds the missing calls of the current layer under deterministic
 * ids, and parks itself with `moveToWaitingChildren` until they finish, so a
 * retried or recovered run repeats no finished call. The last layer is the
 * aggregator; its call goes through the provider's queue like any other.
 */
export function createOrchestratorProcessor(dependencies: OrchestratorDependencies) {
  const { queues, metrics, logger } = dependencies;
  const schemas = jobDataSchemasFor(dependencies.config);
  const labels = metricLabelsFor(dependencies.config);

  async function recordOfFailedCall(planned: PlannedCall, key: string, reason: string): Promise<CallRecord> {
    const queueName = key.slice(0, key.lastIndexOf(':')).slice(queues.prefix.length + 1);
    const provider = parseModelId(planned.agent.model).provider;
    const queue = queues.llm(provider);
    const child = queueName === queue.name ? await Job.fromId(queue, jobIdFromKey(key)) : undefined;
    const recorded = child?.progress as CallRecord | undefined;
    if (recorded && typeof recorded === 'object' && recorded.status === 'failed') return recorded;
    // No record: the call never ran to an answer (stalled too often, or cancelled before it started).
    const now = Date.now();
    return failedCallRecord({
      model: planned.agent.model,
      agentIndex: planned.agentIndex,
      attempts: child?.attemptsMade ?? 1,
      startedAt: child?.processedOn ?? now,
      finishedAt: child?.finishedOn ?? now,
      error: {
        message: reason,
        type: reason.startsWith('cancelled') ? 'cancelled' : 'server_error',
        code: null,
      },
      pricing: priceOf(dependencies.config, planned.agent.model),
    });
  }

  return async function processRequest(
    job: Job<RequestJobData, RequestResult>,
    token?: string,
  ): Promise<RequestResult> {
    // Nothing of the job is used before its data is validated: anything that reaches Redis can add a job.
    const data = parseJobData(schemas.request, job.data);
    expectJobData(job.id === data.requestId, 'requestId', 'is not the id of this job');
    const { preset, requestId } = data;
    const presetLabel = labels.preset(preset.name);
    // Fields of every line about this request (cheaper than a child logger per run).
    const about = { requestId, preset: preset.name };
    const progress = savedProgress(job.progress);
    const lastLayer = layerCount(preset);
    // Batch items are read from their batch's files, never followed live: no event stream for them.
    const publish = (event: RequestEvent): Promise<void> =>
      data.source === 'batch'
        ? Promise.resolve()
        : publishEvent(dependencies.redis, queues.prefix, requestId, event);
    /** Writes sent but not yet awaited (events); awaited with the next batch of writes. */
    const background: Promise<unknown>[] = [];

    const finish = async (
      status: 'completed' | 'cancelled',
      output: string | null,
    ): Promise<RequestResult> => {
      const result: MoaResult = {
        status,
        output,
        layers: progress.layers,
        usage: totalUsage(progress.layers),
        costUsd: totalCost(progress.layers),
        error:
          status === 'cancelled'
            ? { message: 'the request was cancelled', type: 'cancelled', code: 'cancelled' }
            : null,
      };
      progress.currentLayer = null;
      // Every write of the request's end happens here, before the return: a Redis error
      // makes the worker run the job again (infra-retry.ts), and each write is idempotent.
      await Promise.all([
        ...background.splice(0),
        // The layers are stored once, here; the returned value leaves them out.
        job.updateProgress(progress),
        publish({ type: 'done', status }),
        enqueueWebhook(queues, data),
      ]);
      await recordBatchItemEnd(dependencies, data, { status, result });
      metrics.jobsFinished.inc({ preset: presetLabel, outcome: status });
      metrics.jobDuration.observe(
        { preset: presetLabel, outcome: status },
        (Date.now() - data.createdAt) / 1000,
      );
      if (result.costUsd !== null && status === 'completed') {
        metrics.jobCost.observe({ preset: presetLabel }, result.costUsd);
      }
      logger.info({ ...about, status, costUsd: result.costUsd, usage: result.usage }, 'request finished');
      const { layers: _layers, ...stored } = result;
      return stored;
    };

    /**
     * The writes of a request that ends as failed: the `done` event, the
     * webhook, the batch item's error line. Made by the run whose error ends
     * the request (unrecoverable, or its last attempt), before it throws.
     */
    const endFailed = async (error: unknown): Promise<void> => {
      const record = progress.error ?? {
        message: (error instanceof Error && error.message) || 'the request failed',
        type: 'server_error',
        code: null,
      };
      await Promise.all([
        ...background.splice(0),
        publish({ type: 'done', status: 'failed' }),
        enqueueWebhook(queues, data),
      ]);
      await recordBatchItemEnd(dependencies, data, { status: 'failed', progress, error: record });
      metrics.jobsFinished.inc({ preset: presetLabel, outcome: 'failed' });
      metrics.jobDuration.observe(
        { preset: presetLabel, outcome: 'failed' },
        (Date.now() - data.createdAt) / 1000,
      );
      logger.warn({ ...about, error: record }, 'request failed');
    };

    try {
      return await run();
    } catch (error) {
      if (endsRequest(job, error)) await endFailed(error);
      throw error;
    }

    async function run(): Promise<RequestResult> {
      for (;;) {
        const layer = progress.layers.length + 1;
        const state = await readState(job, requestId, layer);
        if (state.cancelled) {
          await job.removeUnprocessedChildren();
          return finish('cancelled', null);
        }
        if (layer > lastLayer) return finish('completed', progress.layers.at(-1)?.calls[0]?.output ?? '');
        const role = roleOfLayer(preset, layer);
        const planned = planLayer(preset, layer, data.messages, progress.layers.at(-1));
        const finishedById = state.finished;
        const pending = planned.filter(
          (call) => !finishedById.has(callJobId(requestId, layer, call.agentIndex)),
        );

        // Past the layer's deadline the unfinished calls are abandoned, never re-added.
        if (pending.length > 0 && !state.deadlinePassed) {
          const writes: Promise<unknown>[] = background.splice(0);
          if (progress.layerStartedAt[layer] === undefined || progress.currentLayer !== layer) {
            progress.layerStartedAt[layer] ??= Date.now();
            progress.currentLayer = layer;
            logger.debug({ ...about, layer, role, calls: planned.length }, 'layer started');
            // One write records the previous layer's result and this layer's start;
            // it goes out together with the calls, not before them.
            writes.push(
              job.updateProgress(progress),
              publish({
                type: 'layer_started',
                layer,
                role,
                calls: planned.length,
              }),
            );
          }
          writes.push(addCalls(job, data, layer, role, pending));
          if (role === 'proposer' && preset.layerTimeoutMs > 0) {
            writes.push(
              scheduleDeadline(
                requestId,
                layer,
                planned,
                progress.layerStartedAt[layer]! + preset.layerTimeoutMs,
                preset.layerTimeoutMs,
              ),
            );
          }
          await Promise.all(writes);
          if (await job.moveToWaitingChildren(token ?? '')) throw new WaitingChildrenError();
          continue; // every call finished while we were adding: read them now
        }

        const calls = await Promise.all(
          planned.map(async (call) => {
            const finished = finishedById.get(callJobId(requestId, layer, call.agentIndex));
            if (finished?.value) return finished.value;
            if (!finished)
              return abandonedCallRecord(call, preset.layerTimeoutMs, progress.layerStartedAt[layer]);
            return recordOfFailedCall(call, finished.key, finished.reason ?? 'unknown failure');
          }),
        );
        const record = finishedLayer(layer, role, progress.layerStartedAt[layer] ?? Date.now(), calls);
        const layerLabels = { preset: presetLabel, layer: String(layer), role };
        metrics.layerDuration.observe(layerLabels, record.durationMs / 1000);
        const layerCost = callsCost(calls);
        if (layerCost !== null) metrics.layerCost.observe(layerLabels, layerCost);
        // Assigned by position, never appended: a run that overlaps a stalled one cannot duplicate a layer.
        progress.layers.splice(layer - 1, progress.layers.length, record);
        progress.currentLayer = null;
        const failedCalls = calls.filter((call) => call.status === 'failed').length;
        logger.info(
          { ...about, layer, role, durationMs: record.durationMs, failed: failedCalls },
          'layer finished',
        );
        // Sent now, awaited with the next writes: commands on one connection keep their order.
        const finishedEvent = publish({
          type: 'layer_finished',
          layer,
          role,
          duration_ms: record.durationMs,
          succeeded: calls.length - failedCalls,
          failed: failedCalls,
        });
        finishedEvent.catch(() => undefined); // observed when awaited; never an unhandled rejection meanwhile
        background.push(finishedEvent);
        const shortfall = layerShortfall(preset, record);
        if (shortfall) {
          progress.error = shortfall;
          await Promise.all([...background.splice(0), job.updateProgress(progress)]);
          // Unrecoverable: the catch above writes the request's end before it leaves.
          throw new UnrecoverableError(shortfall.message);
        }
        // No progress write here: the next layer's start (or the result) records this layer.
      }
    }
  };

  /**
   * Everything one wake-up needs, in one round trip: the cancel and deadline
   * markers and the results BullMQ holds for this request's calls (the same
   * hashes `getChildrenValues` and `getIgnoredChildrenFailures` read).
   */
  async function readState(job: Job<RequestJobData, RequestResult>, requestId: string, layer: number) {
    // Issued together: the connection auto-pipelines them into one round trip.
    const [cancelled, deadlinePassed, processed, failed] = await Promise.all([
      dependencies.redis.exists(cancelKey(queues.prefix, requestId)),
      dependencies.redis.exists(deadlineKey(queues.prefix, requestId, layer)),
      dependencies.redis.hgetall(queues.requests.toKey(`${job.id}:processed`)),
      dependencies.redis.hgetall(queues.requests.toKey(`${job.id}:failed`)),
    ]);
    const finished = new Map<string, { key: string; value?: CallRecord; reason?: string }>();
    for (const [key, value] of Object.entries(processed)) {
      finished.set(jobIdFromKey(key), { key, value: JSON.parse(value) as CallRecord });
    }
    for (const [key, reason] of Object.entries(failed)) finished.set(jobIdFromKey(key), { key, reason });
    return { cancelled: cancelled === 1, deadlinePassed: deadlinePassed === 1, finished };
  }

  /** A call cut off by the layer deadline: it produced nothing the request can use. */
  function abandonedCallRecord(
    call: PlannedCall,
    layerTimeoutMs: number,
    layerStartedAt: number | undefined,
  ): CallRecord {
    const now = Date.now();
    return failedCallRecord({
      model: call.agent.model,
      agentIndex: call.agentIndex,
      attempts: 1,
      startedAt: layerStartedAt ?? now,
      finishedAt: now,
      error: new LayerDeadlineError(layerTimeoutMs).toRecord(),
      pricing: priceOf(dependencies.config, call.agent.model),
    });
  }

  async function scheduleDeadline(
    requestId: string,
    layer: number,
    planned: PlannedCall[],
    deadlineAt: number,
    layerTimeoutMs: number,
  ): Promise<void> {
    await queues.deadlines.add(
      'deadline',
      {
        requestId,
        layer,
        layerTimeoutMs,
        calls: planned.map((call) => ({
          jobId: callJobId(requestId, layer, call.agentIndex),
          provider: parseModelId(call.agent.model).provider,
        })),
      },
      // A deterministic id: a re-run orchestrator schedules the same deadline once.
      { jobId: `${requestId}-L${layer}-deadline`, delay: Math.max(0, deadlineAt - Date.now()) },
    );
  }

  async function addCalls(
    parent: Job<RequestJobData, RequestResult>,
    data: RequestJobData,
    layer: number,
    role: 'proposer' | 'aggregator',
    calls: PlannedCall[],
  ): Promise<void> {
    const byProvider = new Map<string, PlannedCall[]>();
    for (const call of calls) {
      const provider = parseModelId(call.agent.model).provider;
      byProvider.set(provider, [...(byProvider.get(provider) ?? []), call]);
    }
    await Promise.all(
      [...byProvider].map(([provider, providerCalls]) => {
        const providerConfig = dependencies.config.providers[provider];
        return queues.llm(provider).addBulk(
          providerCalls.map((call) => ({
            name: `L${layer}`,
            data: {
              requestId: data.requestId,
              presetName: data.preset.name,
              layer,
              role,
              agentIndex: call.agentIndex,
              agent: call.agent,
              messages: call.messages,
              ...(role === 'aggregator' && data.stream ? { stream: true } : {}),
              // The request's sampling and response_format shape the answer it gets: the aggregator's only.
              ...(role === 'aggregator' && data.aggregatorOptions
                ? { aggregatorOptions: data.aggregatorOptions }
                : {}),
            } satisfies CallJobData,
            opts: {
              jobId: callJobId(data.requestId, layer, call.agentIndex),
              parent: { id: parent.id as string, queue: parent.queueQualifiedName },
              // Without a failure option a failed call would leave its request waiting forever.
              ignoreDependencyOnFailure: true,
              attempts: providerConfig?.maxAttempts ?? 3,
              backoff: { type: 'moa' },
              removeOnComplete: CALL_RETENTION_COMPLETED,
              removeOnFail: CALL_RETENTION_FAILED,
              ...(parent.opts.priority ? { priority: parent.opts.priority } : {}),
            },
          })),
        );
      }),
    );
  }
}

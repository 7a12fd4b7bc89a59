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
  cancelledCallError,
  contextWindowOf,
  closedLayerRecord,
  decideNext,
  failedCallRecord,
  parseModelId,
  priceOf,
  totalCost,
  totalUsage,
  unsentCallRecord,
  withContextFit,
  type CallRecord,
  type LayerStep,
  type MoaConfig,
  type MoaResult,
  type PlannedCall,
} from '@moa-queue/moa';
import { Job, UnrecoverableError, WaitingChildrenError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RequestEnd } from './batches/batch-item-hook.js';
import { isLostJobError } from './infra-retry.js';
import { metricLabelsFor } from './metric-labels.js';
import type { WorkerMetrics } from './metrics.js';
import { expectJobData, parseJobData } from './parse-job-data.js';
import { endRequest } from './request-end.js';
import { createProgressWriter } from './request-progress.js';

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
  /**
   * How long a batch item's request stays readable after its line is
   * recorded (`BATCH_ITEM_GRACE_MS`); then the sweeper removes it.
   * @defaultValue DEFAULT_BATCH_ITEM_GRACE_MS (10 minutes)
   */
  batchItemGraceMs?: number;
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
      stopped: value.stopped ?? null,
    };
  }
  return { layers: [], currentLayer: null, layerStartedAt: {}, error: null, stopped: null };
}

/**
 * Processes one MoA request (the parent of all its calls) by carrying out
 * the decider's decisions (moa-decider.ts in libs/moa). Each run derives
 * where the request stands from the results BullMQ already holds for its
 * children, adds the calls the decider plans under deterministic ids, and
 * parks itself with `moveToWaitingChildren` until they finish, so a retried
 * or recovered run repeats no finished call. The aggregator's call goes
 * through the provider's queue like any other. Every end goes through
 * `endRequest` (request-end.ts).
 */
export function createOrchestratorProcessor(dependencies: OrchestratorDependencies) {
  const { queues, metrics, logger } = dependencies;
  const schemas = jobDataSchemasFor(dependencies.config);
  const labels = metricLabelsFor(dependencies.config);
  const endDependencies = {
    queues,
    redis: dependencies.redis,
    metrics,
    labels,
    logger,
    files: dependencies.files,
    ...(dependencies.batchItemGraceMs === undefined
      ? {}
      : { batchItemGraceMs: dependencies.batchItemGraceMs }),
  };
  // The progress holds the layers, each answer once; written without BullMQ's progress events.
  const writeProgress = createProgressWriter(dependencies.redis, queues.prefix);
  // Every prompt is fitted into its model's context window as this worker's config gives it.
  const windowOf = (modelId: string) => contextWindowOf(dependencies.config, modelId);

  async function recordOfFailedCall(planned: PlannedCall, key: string, reason: string): Promise<CallRecord> {
    const queueName = key.slice(0, key.lastIndexOf(':')).slice(queues.prefix.length + 1);
    const provider = parseModelId(planned.agent.model).provider;
    const queue = queues.llm(provider);
    const child = queueName === queue.name ? await Job.fromId(queue, jobIdFromKey(key)) : undefined;
    const recorded = child?.progress as CallRecord | undefined;
    if (recorded && typeof recorded === 'object' && recorded.status === 'failed') return recorded;
    // No record: the call never ran to an answer (it stalled more often than allowed). A call
    // stopped on purpose always leaves its record, its cause a code (call-processor.ts).
    const now = Date.now();
    return failedCallRecord({
      model: planned.agent.model,
      agentIndex: planned.agentIndex,
      attempts: child?.attemptsMade ?? 1,
      startedAt: child?.processedOn ?? now,
      finishedAt: child?.finishedOn ?? now,
      error: { message: reason, type: 'server_error', code: null },
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
    // Batch items are read from their batch's files, never followed live: no event stream for them.
    const publish = (event: RequestEvent): Promise<void> =>
      data.source === 'batch'
        ? Promise.resolve()
        : publishEvent(dependencies.redis, queues.prefix, requestId, event);
    /** Writes sent but not yet awaited (events); awaited with the next batch of writes. */
    const background: Promise<unknown>[] = [];
    /** The request's end, with its final progress: every outcome goes through request-end.ts. */
    const end = (ending: RequestEnd): Promise<void> => {
      progress.currentLayer = null;
      return endRequest(endDependencies, data, ending, {
        // Ended: the calls' results BullMQ kept for the parent go, the layers hold them.
        writes: [...background.splice(0), writeProgress(requestId, progress, { ended: true })],
      });
    };

    try {
      return await run();
    } catch (error) {
      // Unrecoverable (a failure the decider decided), or an error on the job's last attempt.
      if (endsRequest(job, error)) {
        const record = progress.error ?? {
          message: (error instanceof Error && error.message) || 'the request failed',
          type: 'server_error',
          code: null,
        };
        await end({ status: 'failed', progress, error: record });
      }
      throw error;
    }

    /** Carries out the decider's decisions (moa-decider.ts) until the request ends or waits for calls. */
    async function run(): Promise<RequestResult> {
      for (;;) {
        const state = await readState(job, requestId, progress.currentLayer);
        const decision = decideNext({
          preset,
          messages: data.messages,
          layers: progress.layers,
          finished: new Set([...state.finished.keys()].map((id) => id.slice(requestId.length + 1))),
          ...(state.deadlinePassed && progress.currentLayer !== null
            ? { layersPastDeadline: new Set([progress.currentLayer]) }
            : {}),
          cancelled: state.cancelled,
          priceOf: (model) => priceOf(dependencies.config, model),
          contextWindowOf: windowOf,
        });
        switch (decision.type) {
          case 'cancel':
            await job.removeUnprocessedChildren();
            return finish({ status: 'cancelled', output: null, error: decision.error, stopped: null });
          case 'finish':
            return finish({
              status: 'completed',
              output: decision.output,
              error: null,
              stopped: decision.stopped,
            });
          case 'fail':
            progress.error = decision.error;
            progress.stopped = decision.stopped;
            // Unrecoverable: the catch above ends the request before it leaves.
            throw new UnrecoverableError(decision.error.message);
          case 'run_layer':
            if (await startCalls(decision.step, decision.calls)) throw new WaitingChildrenError();
            continue; // every call finished while we were adding: read them now
          case 'close_layer':
            await closeLayer(decision.step, decision.finished, decision.abandoned, state.finished);
            continue;
        }
      }
    }

    async function finish(
      outcome: Pick<MoaResult, 'status' | 'output' | 'error' | 'stopped'>,
    ): Promise<RequestResult> {
      const result: MoaResult = {
        ...outcome,
        layers: progress.layers,
        usage: totalUsage(progress.layers),
        costUsd: totalCost(progress.layers),
      };
      progress.stopped = outcome.stopped ?? null;
      // Every write of the request's end happens before the return: a Redis error makes the
      // worker run the job again (infra-retry.ts), and each write is idempotent.
      await end({ status: outcome.status as 'completed' | 'cancelled', result });
      // The layers and the answer are stored once, in the progress; the returned value leaves them out.
      const { layers: _layers, output: _output, ...stored } = result;
      return stored;
    }

    /** Adds a step's unfinished calls and parks the job until they finish; false when none is left to wait for. */
    async function startCalls(step: LayerStep, calls: PlannedCall[]): Promise<boolean> {
      const writes: Promise<unknown>[] = background.splice(0);
      if (progress.currentLayer !== step.layer) {
        progress.layerStartedAt[step.layer] = Date.now();
        progress.currentLayer = step.layer;
        // A policy's skip shows on the running job as soon as the aggregator starts.
        if (step.stopped) progress.stopped = step.stopped;
        logger.debug(
          { ...about, layer: step.layer, role: step.role, calls: step.planned.length },
          'layer started',
        );
        // One write records the previous layer's result and this layer's start.
        writes.push(
          writeProgress(requestId, progress),
          publish({ type: 'layer_started', layer: step.layer, role: step.role, calls: step.planned.length }),
        );
        // A call builds its prompt from the stored layers (call-processor.ts): after the
        // first layer they are written before any call can start, not together with the calls.
        if (step.layer > 1) await Promise.all(writes.splice(0));
      }
      writes.push(addCalls(job, data, step, calls));
      if (step.role === 'proposer' && preset.layerTimeoutMs > 0) {
        writes.push(
          scheduleDeadline(
            requestId,
            step.layer,
            step.planned,
            progress.layerStartedAt[step.layer]! + preset.layerTimeoutMs,
            preset.layerTimeoutMs,
          ),
        );
      }
      await Promise.all(writes);
      return job.moveToWaitingChildren(token ?? '');
    }

    /** Records a step's layer from its calls' results (and its abandoned calls), in the position the decider gave. */
    async function closeLayer(
      step: LayerStep,
      finished: PlannedCall[],
      abandoned: PlannedCall[],
      results: Map<string, FinishedCall>,
    ): Promise<void> {
      const { layer, role } = step;
      if (progress.layerStartedAt[layer] === undefined) {
        // No call of the layer fits its model's window, so none was added: it starts and ends at once.
        progress.layerStartedAt[layer] = Date.now();
        const started = publish({ type: 'layer_started', layer, role, calls: step.planned.length });
        started.catch(() => undefined); // observed when awaited with the next writes
        background.push(started);
      }
      const startedAt = progress.layerStartedAt[layer];
      const calls = await Promise.all([
        ...finished.map(async (call) => {
          // A prompt that cannot fit its model's window was never sent: it fails unsent.
          if (call.notSent) {
            return unsentCallRecord(
              { ...call, notSent: call.notSent },
              priceOf(dependencies.config, call.agent.model),
              startedAt ?? Date.now(),
            );
          }
          const result = results.get(callJobId(requestId, layer, call.agentIndex, step.round))!;
          const record =
            result.value ?? (await recordOfFailedCall(call, result.key, result.reason ?? 'unknown failure'));
          return withContextFit(record, call);
        }),
        ...abandoned.map((call) => abandonedCallRecord(call, preset.layerTimeoutMs, startedAt)),
      ]);
      const record = closedLayerRecord(step, progress.layers, startedAt ?? Date.now(), calls);
      const layerLabels = { preset: presetLabel, layer: String(layer), role };
      metrics.layerDuration.observe(layerLabels, record.durationMs / 1000);
      const layerCost = callsCost(calls);
      if (layerCost !== null) metrics.layerCost.observe(layerLabels, layerCost);
      // Assigned by position, never appended: a run that overlaps a stalled one cannot duplicate a layer.
      progress.layers.splice(step.index, progress.layers.length, record);
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
      // No progress write here: the next layer's start (or the request's end) records this layer.
    }
  };

  /**
   * Everything one wake-up needs, in one round trip: the cancel and deadline
   * markers and the results BullMQ holds for this request's calls (the same
   * hashes `getChildrenValues` and `getIgnoredChildrenFailures` read).
   */
  async function readState(
    job: Job<RequestJobData, RequestResult>,
    requestId: string,
    layer: number | null,
  ): Promise<{ cancelled: boolean; deadlinePassed: boolean; finished: Map<string, FinishedCall> }> {
    // Issued together: the connection auto-pipelines them into one round trip.
    const [cancelled, deadlinePassed, processed, failed] = await Promise.all([
      dependencies.redis.exists(cancelKey(queues.prefix, requestId)),
      // Only a layer in flight can have a deadline.
      layer === null ? 0 : dependencies.redis.exists(deadlineKey(queues.prefix, requestId, layer)),
      dependencies.redis.hgetall(queues.requests.toKey(`${job.id}:processed`)),
      dependencies.redis.hgetall(queues.requests.toKey(`${job.id}:failed`)),
    ]);
    const finished = new Map<string, FinishedCall>();
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
      error: cancelledCallError('layer_deadline', layerTimeoutMs).toRecord(),
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
    step: LayerStep,
    calls: PlannedCall[],
  ): Promise<void> {
    const { layer, role, round } = step;
    // One add per call, not addBulk: that builds an ioredis pipeline which copies every one of
    // BullMQ's scripts; the adds of one turn leave in one socket write anyway (coalesced-writes.ts).
    await Promise.all(
      calls.map((call) => {
        const provider = parseModelId(call.agent.model).provider;
        const jobId = callJobId(data.requestId, layer, call.agentIndex, round);
        return queues.llm(provider).add(
          `L${layer}`,
          // What identifies the prompt, not the prompt: the call builds it from the request's job.
          {
            requestId: data.requestId,
            presetName: data.preset.name,
            layer,
            role,
            agentIndex: call.agentIndex,
            agent: call.agent,
            ...(round > 0 ? { round } : {}),
            ...(step.referenceShare !== undefined ? { referenceShare: step.referenceShare } : {}),
          } satisfies CallJobData,
          {
            jobId,
            parent: { id: parent.id as string, queue: parent.queueQualifiedName },
            // Without a failure option a failed call would leave its request waiting forever.
            ignoreDependencyOnFailure: true,
            attempts: dependencies.config.providers[provider]?.maxAttempts ?? 3,
            backoff: { type: 'moa' },
            removeOnComplete: CALL_RETENTION_COMPLETED,
            removeOnFail: CALL_RETENTION_FAILED,
            ...(parent.opts.priority ? { priority: parent.opts.priority } : {}),
          },
        );
      }),
    );
  }
}

/** A call of the request that BullMQ reports finished: its record, or the key and reason of its failure. */
interface FinishedCall {
  key: string;
  value?: CallRecord;
  reason?: string;
}

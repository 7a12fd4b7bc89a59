import {
  callJobId,
  jobDataSchemasFor,
  llmQueueName,
  publishEvent,
  type CallJobData,
  type CallJobResult,
} from '@moa-queue/contract';
import {
  abortedCallError,
  asProviderError,
  attemptCall,
  cancelledCallError,
  completedCallRecord,
  failedCallRecord,
  retryDecision,
  type ErrorRecord,
  type ModelRegistry,
  type MoaConfig,
} from '@moa-queue/moa';
import { RateLimitError, UnrecoverableError, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createCallPromptReader } from './call-prompt.js';
import { metricLabelsFor } from './metric-labels.js';
import type { WorkerMetrics } from './metrics.js';
import { expectJobData, parseJobData } from './parse-job-data.js';

/** What the call processor needs. */
export interface CallProcessorDependencies {
  /** The config the models were built from: job data and metric labels are checked against it. */
  config: MoaConfig;
  models: ModelRegistry;
  metrics: WorkerMetrics;
  logger: Logger;
  redis: Redis;
  prefix: string;
  /** The provider's queue, to pause it for a 429's Retry-After. */
  queueOf(provider: string): Queue;
  /**
   * Wait after a 429 that did not say how long.
   * @defaultValue 1000
   */
  defaultRateLimitWaitMs?: number;
}

/**
 * Processes one LLM call job: exactly one provider attempt per run. BullMQ
 * owns the retries: a retryable error is rethrown (backoff by the worker's
 * strategy), a 429 pauses the whole provider queue for Retry-After and puts
 * the job back without spending an attempt, a permanent error or the last
 * attempt fails the job with its record left as progress for the parent.
 * A Redis error is never taken for the provider's: it leaves as it is, and
 * the worker runs the job again without spending an attempt (infra-retry.ts).
 */
export function createCallProcessor(dependencies: CallProcessorDependencies) {
  const { metrics, logger } = dependencies;
  const schemas = jobDataSchemasFor(dependencies.config);
  const names = metricLabelsFor(dependencies.config);
  const readPrompt = createCallPromptReader({
    redis: dependencies.redis,
    prefix: dependencies.prefix,
    config: dependencies.config,
    schemas,
  });
  return async function processCall(
    job: Job<CallJobData, CallJobResult>,
    _token?: string,
    signal?: AbortSignal,
  ): Promise<CallJobResult> {
    // Nothing of the job is used before its data is validated: anything that reaches Redis can add a job.
    const data = parseJobData(schemas.call, job.data);
    expectJobData(
      job.id === callJobId(data.requestId, data.layer, data.agentIndex, data.round),
      'requestId',
      'the request id, layer, agent index and round do not make the id of this job',
    );
    const model = dependencies.models.resolve(data.agent.model);
    // A call is made on its provider's queue only, under that provider's rate limit and concurrency.
    expectJobData(
      job.queueName === llmQueueName(model.provider),
      'agent.model',
      `provider ${JSON.stringify(model.provider)} is not the provider of this queue`,
    );
    const labels = {
      provider: names.provider(model.provider),
      model: names.model(model.modelId),
      layer: String(data.layer),
      role: data.role,
    };
    const attempts = job.attemptsMade + 1;
    // Fields of every line about this call; a child logger per call would cost more than the call's logging.
    const about = {
      requestId: data.requestId,
      layer: data.layer,
      model: model.modelId,
      attempt: attempts,
      jobId: job.id,
    };

    // The prompt is built here from the request's job; the call job carries only what identifies it.
    const prompt = await readPrompt(data, dependencies.queueOf(model.provider).toKey(job.id!));
    if (prompt.outcome === 'answered') {
      // Added again after it completed (an orchestrator re-run): never paid for twice.
      logger.info(about, 'call already answered: its recorded result is returned again');
      return prompt.record;
    }
    if (prompt.outcome === 'cancelled') {
      // Recorded like any call's failure, its cause as a code: the request reads the record, never the text.
      return failUnsent(
        cancelledCallError('cancelled').toRecord(),
        attempts,
        'cancelled: the request was cancelled before this call started',
      );
    }
    const { planned } = prompt;
    if (planned.notSent) {
      // Planned to fit by the orchestrator, yet too long here (a worker configured with another window).
      return failUnsent(planned.notSent, 0, `${planned.notSent.code}: ${planned.notSent.message}`);
    }

    const startedAt = Date.now();
    // Deltas are published in order on one connection; the chain is awaited before the result.
    // They carry the run (attemptsStarted), not the attempt: a run repeated after a Redis error
    // or a stall spends no attempt, yet its text must not read as the continuation of the last.
    const run = Math.max(job.attemptsStarted, attempts);
    let relay: Promise<void> = Promise.resolve();
    let relayFailure: unknown;
    const onDelta = prompt.stream
      ? (text: string) => {
          relay = relay
            .then(() =>
              relayFailure === undefined
                ? publishEvent(dependencies.redis, dependencies.prefix, data.requestId, {
                    type: 'delta',
                    attempt: run,
                    text,
                  })
                : undefined,
            )
            // Kept, never left unhandled: a Redis error here is thrown after the call, as Redis's.
            .catch((error: unknown) => {
              relayFailure ??= error;
            });
        }
      : undefined;
    let result: Awaited<ReturnType<typeof attemptCall>>;
    try {
      result = await attemptCall(model, planned.agent, planned.messages, {
        signal,
        onDelta,
        ...(prompt.callOptions ? { callOptions: prompt.callOptions } : {}),
      });
    } catch (thrown) {
      // Only the provider's errors get here; Redis errors (below) are the worker's to retry.
      return failed(thrown);
    }
    await relay;
    if (relayFailure !== undefined) throw relayFailure;
    metrics.llmRequestDuration.observe({ ...labels, outcome: 'success' }, result.latencyMs / 1000);
    metrics.llmFinishReasons.inc({
      provider: labels.provider,
      model: labels.model,
      reason: names.finishReason(result.finishReason),
    });
    metrics.llmTokens.inc({ ...labels, type: 'input' }, result.usage.promptTokens);
    metrics.llmTokens.inc({ ...labels, type: 'output' }, result.usage.completionTokens);
    if (result.costUsd === null) {
      metrics.llmCostUnknown.inc({ model: labels.model });
      logger.warn(about, 'model has no price: its cost is reported as null');
    } else {
      metrics.llmCost.inc(labels, result.costUsd);
    }
    logger.debug({ ...about, latencyMs: result.latencyMs, usage: result.usage }, 'call completed');
    return completedCallRecord(model.modelId, data.agentIndex, result, attempts);

    /** Fails the call for good without sending it, its record left as progress for the request. */
    async function failUnsent(error: ErrorRecord, attemptsCount: number, reason: string): Promise<never> {
      const now = Date.now();
      await job.updateProgress(
        failedCallRecord({
          model: model.modelId,
          agentIndex: data.agentIndex,
          attempts: attemptsCount,
          startedAt: now,
          finishedAt: now,
          error,
          pricing: model.pricing,
        }),
      );
      throw new UnrecoverableError(reason);
    }

    async function failed(thrown: unknown): Promise<never> {
      // An aborted call fails for the cause its abort carried (cancel-listener.ts passes the code).
      const error = signal?.aborted ? abortedCallError(signal.reason) : asProviderError(thrown);
      const finishedAt = Date.now();
      metrics.llmRequestDuration.observe({ ...labels, outcome: 'error' }, (finishedAt - startedAt) / 1000);

      // Attempts are BullMQ's: a 429 puts the job back without spending one, a retry is a rethrow.
      const decision = retryDecision({
        error,
        attempts,
        maxAttempts: job.opts.attempts ?? 1,
        defaultRateLimitWaitMs: dependencies.defaultRateLimitWaitMs,
        aborted: signal?.aborted === true,
      });
      if (decision.action === 'wait') {
        metrics.llmRetries.inc({ provider: labels.provider, model: labels.model, reason: decision.reason });
        logger.warn({ ...about, waitMs: decision.delayMs }, 'provider rate limited: pausing its queue');
        await dependencies.queueOf(model.provider).rateLimit(decision.delayMs);
        throw new RateLimitError();
      }
      if (decision.action === 'retry') {
        metrics.llmRetries.inc({ provider: labels.provider, model: labels.model, reason: decision.reason });
        logger.warn({ ...about, error: error.toRecord() }, 'call failed: will retry');
        throw error;
      }
      const record = failedCallRecord({
        model: model.modelId,
        agentIndex: data.agentIndex,
        attempts,
        startedAt,
        finishedAt,
        error: error.toRecord(),
        pricing: model.pricing,
      });
      // An answer the content filter stopped is an answer with a finish reason, though the call fails.
      if (record.finishReason !== null) {
        metrics.llmFinishReasons.inc({
          provider: labels.provider,
          model: labels.model,
          reason: names.finishReason(record.finishReason),
        });
      }
      await job.updateProgress(record);
      logger.warn({ ...about, error: record.error }, 'call failed for good');
      throw new UnrecoverableError(`${error.type}: ${error.message}`);
    }
  };
}

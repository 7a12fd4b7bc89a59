import { Queue, type ConnectionOptions } from 'bullmq';
import type {
  CallJobData,
  CallJobResult,
  DeadlineJobData,
  RequestJobData,
  RequestResult,
  WebhookJobData,
} from './payloads.js';
import { DEADLINES_QUEUE, llmQueueName, REQUESTS_QUEUE, WEBHOOKS_QUEUE } from './queue-names.js';
import { QUEUE_EVENTS_MAX_LENGTH, REQUEST_RETENTION } from './retention.js';
import { BATCHES_QUEUE, type BatchJobData } from './batch-keys.js';

/** Options of {@link createMoaQueues}. */
export interface MoaQueuesOptions {
  connection: ConnectionOptions;
  /** BullMQ key prefix. @defaultValue 'moa' */
  prefix: string;
  /** Provider names: one LLM queue each. */
  providers: string[];
  /** Told about connection errors (a Queue without an 'error' listener would throw them). */
  onError?: (error: Error) => void;
}

/** The typed queues that the API and the workers share. */
export interface MoaQueues {
  prefix: string;
  requests: Queue<RequestJobData, RequestResult>;
  deadlines: Queue<DeadlineJobData, void>;
  webhooks: Queue<WebhookJobData, void>;
  /** Batch jobs: validate, finalize, drain, expire, force-finalize. */
  batches: Queue<BatchJobData, void>;
  /** The LLM call queue of a provider; throws for an unknown provider. */
  llm(provider: string): Queue<CallJobData, CallJobResult>;
  /** Every queue, requests first. */
  all(): Queue[];
  close(): Promise<void>;
}

/**
 * Creates the request queue and one LLM queue per provider, all on one prefix.
 *
 * The attempts below are for a job's own faults (a bug, a provider's for a
 * call): a Redis error (full, read-only, unreachable, timing out) inside a
 * worker spends none, the worker retries it for up to an hour
 * (apps/worker/src/infra-retry.ts).
 */
export function createMoaQueues(options: MoaQueuesOptions): MoaQueues {
  const base = {
    connection: options.connection,
    prefix: options.prefix,
    streams: { events: { maxLen: QUEUE_EVENTS_MAX_LENGTH } },
  };
  const requests = new Queue<RequestJobData, RequestResult>(REQUESTS_QUEUE, {
    ...base,
    defaultJobOptions: {
      attempts: 3,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: REQUEST_RETENTION,
      removeOnFail: REQUEST_RETENTION,
    },
  });
  const deadlines = new Queue<DeadlineJobData, void>(DEADLINES_QUEUE, {
    ...base,
    defaultJobOptions: {
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 24 * 3600 },
      attempts: 5,
      backoff: { type: 'exponential', delay: 1000 },
    },
  });
  const webhooks = new Queue<WebhookJobData, void>(WEBHOOKS_QUEUE, {
    ...base,
    defaultJobOptions: { removeOnComplete: { age: 24 * 3600 }, removeOnFail: { age: 7 * 24 * 3600 } },
  });
  const batches = new Queue<BatchJobData, void>(BATCHES_QUEUE, {
    ...base,
    defaultJobOptions: {
      attempts: 10,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: { age: 24 * 3600 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  });
  const llmQueues = new Map(
    options.providers.map((provider) => [
      provider,
      new Queue<CallJobData, CallJobResult>(llmQueueName(provider), base),
    ]),
  );
  const every = [requests, deadlines, webhooks, batches, ...llmQueues.values()] as Queue[];
  const onError = options.onError ?? (() => undefined);
  for (const queue of every) queue.on('error', onError);
  return {
    prefix: options.prefix,
    requests,
    deadlines,
    webhooks,
    batches,
    llm(provider) {
      const queue = llmQueues.get(provider);
      if (!queue) throw new Error(`no LLM queue for provider "${provider}"`);
      return queue;
    },
    all: () => [...every],
    async close() {
      await Promise.all(every.map((queue) => queue.close()));
    },
  };
}

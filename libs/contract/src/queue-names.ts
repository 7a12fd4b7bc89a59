/** The queue of orchestrator jobs: one per MoA request. */
export const REQUESTS_QUEUE = 'moa-requests';

/**
 * The BullMQ job hash of a request (its orchestrator job): its data, its
 * progress (the layers, each answer stored once) and its result.
 */
export function requestJobKey(prefix: string, requestId: string): string {
  return `${prefix}:${REQUESTS_QUEUE}:${requestId}`;
}

/** Delayed jobs that enforce a layer's straggler deadline (`layerTimeoutMs`). */
export const DEADLINES_QUEUE = 'moa-deadlines';

/** Webhook deliveries, one job per finished request that asked for one. */
export const WEBHOOKS_QUEUE = 'moa-webhooks';

/** Prefix of the per-provider LLM call queues. */
export const LLM_QUEUE_PREFIX = 'moa-llm-';

/**
 * The queue of one provider's LLM calls. One queue per provider gives each
 * provider its own rate limit, concurrency and 429 pause.
 */
export function llmQueueName(provider: string): string {
  return `${LLM_QUEUE_PREFIX}${provider}`;
}

/**
 * Default BullMQ key prefix. For Redis Cluster use a hash tag such as
 * `{moa}` so that every key of a queue lands in one slot.
 */
export const DEFAULT_QUEUE_PREFIX = 'moa';

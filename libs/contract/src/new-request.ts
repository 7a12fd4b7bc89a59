import type { AggregatorOptions, ChatMessage, PresetConfig } from '@moa-queue/moa';
import { newRequestId } from './job-ids.js';
import type { RequestJobData } from './payloads.js';
import { withPolicies, type PolicyOverrides } from './request-options.js';

/** What a new request is made of, whichever route (or batch validation) accepted it. */
export interface NewRequestOptions {
  /** The owner: the caller's tenant, or the batch's. */
  tenant: string;
  preset: PresetConfig;
  messages: ChatMessage[];
  metadata?: Record<string, string>;
  webhook?: { url: string };
  stream?: boolean;
  source: 'jobs' | 'chat' | 'batch';
  /** Caps the aggregator's answer (a chat completion's `max_tokens`). */
  maxTokens?: number;
  /** The request's sampling parameters and `response_format`, for its aggregator call. */
  aggregatorOptions?: AggregatorOptions;
  /** The request's `moa` object: its overrides of the preset's policies. */
  policies?: PolicyOverrides;
}

/**
 * Builds the orchestrator job's data: a snapshot of the preset, so config
 * changes never alter it. The API builds it for jobs and chat completions,
 * the worker for batch items (it validates batch input files).
 */
export function newRequestData(options: NewRequestOptions): RequestJobData {
  const sized: PresetConfig = options.maxTokens
    ? { ...options.preset, aggregator: { ...options.preset.aggregator, maxTokens: options.maxTokens } }
    : options.preset;
  // The snapshot carries the policies the request runs with: the preset's, as its `moa` object overrode them.
  const preset = withPolicies(sized, options.policies);
  return {
    requestId: newRequestId(),
    tenant: options.tenant,
    preset,
    messages: options.messages,
    metadata: options.metadata ?? {},
    ...(options.webhook ? { webhook: { url: options.webhook.url } } : {}),
    createdAt: Date.now(),
    ...(options.stream ? { stream: true } : {}),
    source: options.source,
    ...(options.aggregatorOptions ? { aggregatorOptions: options.aggregatorOptions } : {}),
  };
}

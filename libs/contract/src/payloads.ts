import type { ResponseEcho } from './responses.js';
import type {
  AgentConfig,
  AggregatorOptions,
  CallRecord,
  ChatMessage,
  ErrorRecord,
  MoaResult,
  LayerRecord,
  PresetConfig,
  StopRecord,
} from '@moa-queue/moa';

/** Data of an orchestrator job (queue `moa-requests`, job id = request id). Never holds a secret. */
export interface RequestJobData {
  requestId: string;
  /**
   * The tenant that owns the request (a key's name, or `default` without
   * keys). Only that tenant and admins may read, follow or cancel it; its
   * webhook is signed with that tenant's secret.
   */
  tenant: string;
  /** A snapshot of the preset when the request was accepted: config changes never alter a running request. */
  preset: PresetConfig;
  messages: ChatMessage[];
  metadata: Record<string, string>;
  webhook?: { url: string };
  /** Epoch milliseconds. */
  createdAt: number;
  /** Relay the aggregator's tokens through the request's event stream as they arrive. */
  stream?: boolean;
  /** Where the request came from: interactive jobs, chat completions or a batch. */
  source?: 'jobs' | 'chat' | 'batch';
  /**
   * Set on a batch's item: its batch and the input line's `custom_id`;
   * `response` (the request fields a response object echoes) when the batch's
   * endpoint is `/v1/responses`, whose output lines are responses.
   */
  batch?: { id: string; customId: string; response?: ResponseEcho };
  /**
   * The request's sampling parameters and `response_format`, for its
   * aggregator call only (proposers keep their preset's). Absent when it set none.
   */
  aggregatorOptions?: AggregatorOptions;
}

/**
 * Data of one LLM call job (queue `moa-llm-<provider>`, id `<request>-L<k>-A<i>`):
 * what identifies its prompt, never a copy of it. The call processor builds
 * the prompt from its request's job (messages, preset snapshot, the stored
 * layers whose answers are the references) with the same `planCall` the
 * orchestrator planned it with, so each text is stored once.
 */
export interface CallJobData {
  requestId: string;
  presetName: string;
  layer: number;
  role: 'proposer' | 'aggregator';
  agentIndex: number;
  /** As planned: its `maxTokens` lowered when the prompt needed the room (`planLayer`). */
  agent: AgentConfig;
  /** Set (1) on an aggregator call run again with halved references; part of the job id. */
  round?: number;
  /** The share of the reference budget the prompt was planned with, when below 1 (a round-1 aggregator). */
  referenceShare?: number;
}

/** A finished call job returns its record; a failed one leaves it as its progress. */
export type CallJobResult = CallRecord;

/** What an orchestrator job reports as progress while it runs. */
export interface RequestProgress {
  /** Layers whose calls have all finished. */
  layers: LayerRecord[];
  /** The layer whose calls are in flight, if any. */
  currentLayer: number | null;
  /** Epoch milliseconds at which each layer's calls were added, by layer number. */
  layerStartedAt: Record<string, number>;
  error: ErrorRecord | null;
  /** Which policy skipped layers, after which layer; absent or null when none did. */
  stopped?: StopRecord | null;
}

/** Status of a request as the API reports it. */
export type RequestStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

/** Data of a layer-deadline job (queue `moa-deadlines`, id `<request>-L<k>-deadline`). */
export interface DeadlineJobData {
  requestId: string;
  layer: number;
  layerTimeoutMs: number;
  /** The layer's call jobs and the provider queue each one is on. */
  calls: { jobId: string; provider: string }[];
}

/** Data of a webhook delivery job (queue `moa-webhooks`, id `<request>-webhook`). */
export interface WebhookJobData {
  requestId: string;
  url: string;
}

/**
 * What an orchestrator job returns. The layers are stored once, in the
 * job's progress, and so is the answer (the aggregator's call there, see
 * `answerOf`); a result built in memory may still carry them, and a result
 * stored by an earlier version carries its `output`.
 */
export type RequestResult = Omit<MoaResult, 'layers' | 'output'> & {
  layers?: LayerRecord[];
  output?: string | null;
};

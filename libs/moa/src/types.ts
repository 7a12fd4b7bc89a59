/** A chat message as OpenAI's chat completions API takes it (text content only). */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'developer';
  content: string;
}

/** One agent of a preset: a model and its sampling settings. */
export interface AgentConfig {
  /** `<provider>/<model id as the provider knows it>`. */
  model: string;
  /** @defaultValue 0.7 */
  temperature: number;
  /** @defaultValue 512 for proposers, 2048 for the aggregator */
  maxTokens: number;
  /** Prepended to the request's own system message, when set. */
  systemPrompt?: string;
}

/** A MoA pipeline: proposer layers in order, then one aggregator. */
export interface PresetConfig {
  name: string;
  description?: string;
  /**
   * Epoch seconds at which the preset was made: the `created` of its
   * `/v1/models` entry, stable across restarts.
   * Optional only for presets carried by jobs made before it existed.
   * @defaultValue {@link PRESET_CREATED_DEFAULT}
   */
  created?: number;
  /** Proposer layers, in order; the first gets no references. */
  layers: AgentConfig[][];
  aggregator: AgentConfig;
  /**
   * A layer with fewer successful calls fails the request.
   * @defaultValue 1
   */
  minProposers: number;
  /**
   * Straggler deadline per layer in milliseconds; 0 means none.
   * @defaultValue 0
   */
  layerTimeoutMs: number;
  /** The aggregate-and-synthesize instruction placed before the references. */
  referencePrompt: string;
  /**
   * How references are laid out in the system message (see `references.ts`).
   * @defaultValue 'tagged'
   */
  referenceFormat: ReferenceFormat;
  /**
   * Skip the remaining proposer layers once a layer's answers agree this much
   * (see `agreement.ts`); unset: every layer runs.
   */
  earlyStop?: EarlyStopPolicy;
  /**
   * USD the request may spend: a layer whose worst-case cost would pass it is
   * never started (see `cost-projection.ts`); unset: no cap.
   */
  maxCostUsd?: number;
}

/** The early-stop policy of a preset. */
export interface EarlyStopPolicy {
  /** Agreement (0..1) of a proposer layer's successful answers at which the aggregator runs next. */
  minAgreement: number;
}

/**
 * Why a request skipped layers of its preset: `agreement` (early stop) or
 * `cost_cap` (`maxCostUsd`), and the last layer that ran before it (0 when
 * none had).
 */
export interface StopRecord {
  reason: 'agreement' | 'cost_cap';
  afterLayer: number;
}

/**
 * The layout of references in an agent's system message:
 * - `tagged`: each answer in its own delimited block whose tag name carries a
 *   per-request nonce, with anything tag-like inside it escaped (the default:
 *   references are untrusted data);
 * - `paper`: the reference implementation's layout, byte for byte
 *   (togethercomputer/MoA, `utils.py` `inject_references_to_messages`): the
 *   instruction, `Responses from models:` and each answer as `\n1. …`, with
 *   no delimiter and no escaping; for reproductions and ablations.
 */
export type ReferenceFormat = 'tagged' | 'paper';

/** An OpenAI-compatible provider endpoint. */
export interface ProviderConfig {
  name: string;
  baseURL: string;
  /** Environment variable holding the API key; unset for keyless local servers. */
  apiKeyEnv?: string;
  /** @defaultValue 32 */
  concurrency: number;
  /** Requests per minute across all workers; undefined means unlimited. */
  requestsPerMinute?: number;
  /** @defaultValue 120000 */
  timeoutMs: number;
  /** @defaultValue 3 */
  maxAttempts: number;
}

/** USD per million tokens. */
export interface ModelPricing {
  inputCostPerMTok: number;
  outputCostPerMTok: number;
}

/** What the config says about a model (an entry of `models`): its price and, when known, its context window. */
export interface ModelConfig extends ModelPricing {
  /** Tokens the model takes in one call, prompt and completion together; undefined when unknown. */
  contextWindow?: number;
}

/** Webhook delivery settings. */
export interface WebhookSettings {
  allowHosts: string[];
  retryScheduleMs: number[];
  retryHorizonMs: number;
}

/** Limits on what one tenant may hold at once; past one, the API answers 429 with `Retry-After`. */
export interface Quotas {
  /** Queued plus running requests (jobs and chat completions; batch items are counted apart). @defaultValue 1000 */
  maxActiveJobs: number;
  /** Batch items not yet ended, over all of the tenant's batches. @defaultValue 200000 */
  maxActiveBatchItems: number;
  /** Bytes of stored files (uploads and batch output). @defaultValue 2147483648 (2 GiB) */
  maxFileBytes: number;
  /** Concurrent SSE followers plus chat completions waiting for their answer. @defaultValue 200 */
  maxStreams: number;
}

/** Per-tenant settings from the config file's `tenants`. */
export interface TenantSettings {
  /** Signs this tenant's webhooks; falls back to `MOA_WEBHOOK_SECRET` when unset. */
  webhookSecret?: string;
  /** This tenant's quotas, each replacing the default `quotas` of the same name. */
  quotas?: Partial<Quotas>;
}

/** The whole resolved configuration: built-ins merged with the config file. */
export interface MoaConfig {
  providers: Record<string, ProviderConfig>;
  models: Record<string, ModelConfig>;
  presets: Record<string, PresetConfig>;
  defaultPreset: string;
  webhooks: WebhookSettings;
  /** Per-tenant settings by tenant name; a tenant not listed has none. */
  tenants: Record<string, TenantSettings>;
  /** Default quotas of every tenant. */
  quotas: Quotas;
}

/** Token usage of one call. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

/** A structured error as it appears on a call or a job. */
export interface ErrorRecord {
  message: string;
  type: string;
  code: string | null;
}

/** A reference shortened to fit a call's context window: whose answer it was, and its size before and after. */
export interface ReferenceCutRecord {
  /** The agent of the previous layer whose answer this reference is. */
  agentIndex: number;
  /** Tokens of the answer (o200k_base). */
  originalTokens: number;
  /** Tokens of it the call was sent, before the note saying it was cut. */
  keptTokens: number;
}

/**
 * What fitting a call's prompt into its model's context window changed
 * (`fit-to-context.ts`); every field is absent when nothing was.
 */
export interface ContextFitRecord {
  /** The references shortened, in reference order. */
  referencesCut?: ReferenceCutRecord[];
  /** The agent's `maxTokens` and the lower `max_tokens` the call was sent with. */
  maxTokensLowered?: { from: number; to: number };
  /**
   * The share of the references' budget the call was planned with, when
   * below 1: 0.5 for an aggregator re-planned with halved references after
   * the provider refused its prompt for context length.
   */
  referenceShare?: number;
}

/** Outcome of one LLM call (one agent in one layer). */
export interface CallRecord extends ContextFitRecord {
  model: string;
  agentIndex: number;
  status: 'completed' | 'failed';
  output: string | null;
  usage: Usage;
  /** USD; null when the model has no price. */
  costUsd: number | null;
  /** Duration of the attempt that produced the result, in milliseconds. */
  latencyMs: number;
  attempts: number;
  /**
   * Epoch milliseconds: when the attempt that answered started (a failed
   * call: its first attempt), and when the result came.
   */
  startedAt: number;
  finishedAt: number;
  /**
   * The provider's `finish_reason` (`stop`, `length`, `content_filter`, …),
   * as it said it; null when it said none or the call produced no answer.
   * `length` marks an answer cut by `maxTokens`.
   */
  finishReason: string | null;
  error: ErrorRecord | null;
}

/** Outcome of one layer. Layers are numbered as in the paper: 1..L-1 proposers, L the aggregator. */
export interface LayerRecord {
  layer: number;
  role: 'proposer' | 'aggregator';
  startedAt: number;
  finishedAt: number;
  durationMs: number;
  calls: CallRecord[];
  /**
   * Set on an aggregator layer run again after its call exceeded the model's
   * context: the share of the reference budget its references were given (0.5).
   */
  referenceShare?: number;
}

/**
 * OpenAI's `response_format`: plain text, any JSON object, or JSON that
 * follows a schema (`strict` asks the provider to enforce it).
 */
export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | {
      type: 'json_schema';
      json_schema: {
        name: string;
        description?: string;
        schema?: Record<string, unknown>;
        strict?: boolean | null;
      };
    };

/**
 * Parameters a request sets for its aggregator call only (OpenAI's names in
 * camel case, validated to OpenAI's ranges by the API). Proposers keep their
 * preset's sampling: the mixture's value is in its diversity, which a
 * request's `temperature: 0` or `seed` applied to every proposer would undo;
 * the aggregator writes the answer the client sees, so its answer is the one
 * the client's parameters shape. An unset field leaves the preset's value
 * (temperature) or the provider's default (the others).
 */
export interface AggregatorOptions {
  /** 0–2; replaces the aggregator's preset temperature. */
  temperature?: number;
  /** 0–1. */
  topP?: number;
  /** An integer, for providers that sample reproducibly. */
  seed?: number;
  /** Up to 4 stop sequences. */
  stop?: string[];
  /** −2–2. */
  presencePenalty?: number;
  /** −2–2. */
  frequencyPenalty?: number;
  responseFormat?: ResponseFormat;
}

/** The `finish_reason` values a chat completion may carry (OpenAI's set). */
export type ChatFinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | 'function_call';

const CHAT_FINISH_REASONS: ReadonlySet<string> = new Set([
  'stop',
  'length',
  'content_filter',
  'tool_calls',
  'function_call',
]);

/**
 * The `finish_reason` a chat completion reports for a provider's: OpenAI's
 * values as they are; anything else (a provider's own `eos`, `end_turn`, or
 * none) is `stop`, since the answer did end.
 */
export function chatFinishReason(reason: string | null | undefined): ChatFinishReason {
  return reason !== null && reason !== undefined && CHAT_FINISH_REASONS.has(reason)
    ? (reason as ChatFinishReason)
    : 'stop';
}

/** The label values of `moa_llm_finish_reasons_total{reason}`: a fixed set. */
export const FINISH_REASON_LABELS = [
  'stop',
  'length',
  'content_filter',
  'tool_calls',
  'other',
  'unknown',
] as const;

/**
 * A provider's `finish_reason` as a metric label: one of
 * {@link FINISH_REASON_LABELS}, never the provider's own text
 * (`function_call` counts as `tool_calls`, none as `unknown`, anything else
 * as `other`).
 */
export function finishReasonLabel(reason: string | null | undefined): (typeof FINISH_REASON_LABELS)[number] {
  if (reason === null || reason === undefined || reason === '') return 'unknown';
  if (reason === 'stop' || reason === 'length' || reason === 'content_filter' || reason === 'tool_calls')
    return reason;
  if (reason === 'function_call') return 'tool_calls';
  return 'other';
}

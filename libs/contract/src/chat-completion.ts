import { chatFinishReason, type ChatFinishReason } from '@moa-queue/moa';
import type { JobView } from './job-view.js';

/** The chat completion's id for a request: OpenAI's prefix, our job id inside. */
export function completionId(requestId: string): string {
  return `chatcmpl-${requestId}`;
}

/** The job object less `output`: the `moa` extension field of a completion. */
export function moaExtension(view: JobView): Omit<JobView, 'output'> {
  const { output: _output, ...rest } = view;
  return rest;
}

/**
 * The `finish_reason` of a finished request's answer: its aggregator call's
 * (`length` when `max_tokens` cut it), in OpenAI's set; `stop` when the
 * provider gave none.
 */
export function finishReasonOf(view: Pick<JobView, 'layers'>): ChatFinishReason {
  const last = view.layers.at(-1);
  return chatFinishReason(last?.role === 'aggregator' ? last.calls[0]?.finish_reason : null);
}

/**
 * The `chat.completion` of a finished request, usage summed over every call:
 * what `POST /v1/chat/completions` answers, and a batch output line's body.
 */
export function chatCompletionOf(view: JobView) {
  return {
    id: completionId(view.id),
    object: 'chat.completion' as const,
    created: view.created_at,
    model: view.preset,
    choices: [
      {
        index: 0,
        message: { role: 'assistant' as const, content: view.output ?? '', refusal: null },
        logprobs: null,
        finish_reason: finishReasonOf(view),
      },
    ],
    usage: view.usage,
    system_fingerprint: null,
    moa: moaExtension(view),
  };
}

/** One `chat.completion.chunk`. */
export function chatChunk(
  requestId: string,
  model: string,
  created: number,
  delta: { role?: 'assistant'; content?: string },
  finishReason: ChatFinishReason | null = null,
) {
  return {
    id: completionId(requestId),
    object: 'chat.completion.chunk' as const,
    created,
    model,
    system_fingerprint: null,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
}

/** The final chunk of a stream with `stream_options.include_usage`: no choices, the summed usage. */
export function usageChunk(view: JobView, created: number) {
  return {
    id: completionId(view.id),
    object: 'chat.completion.chunk' as const,
    created,
    model: view.preset,
    system_fingerprint: null,
    choices: [],
    usage: view.usage,
    moa: moaExtension(view),
  };
}

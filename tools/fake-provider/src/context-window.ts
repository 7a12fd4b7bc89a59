import { encode } from 'gpt-tokenizer/encoding/o200k_base';
import type { OpenAiErrorBody } from './openai-error.js';
import type { RecordedMessage } from './recorded-request.js';

// Special-token text in a message is plain text here, as on a real server.
const AS_PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/**
 * The prompt tokens a model with an enforced context window counts: the
 * `o200k_base` tokens of every message's content (the tokenizer the
 * workers budget with, `gpt-tokenizer`), plus OpenAI's chat overhead of 3
 * per message and 3 per prompt. The workers count 4 per message, so a prompt
 * they measured as fitting fits here too unless the window here is smaller
 * than the one they were configured with.
 */
export function countWindowTokens(messages: readonly RecordedMessage[]): number {
  let total = 3;
  for (const message of messages) total += 3 + encode(message.content, AS_PLAIN_TEXT).length;
  return total;
}

/**
 * The 400 OpenAI answers a prompt that, with its `max_tokens`, does not fit
 * the model's context window (vLLM answers the same words).
 */
export function contextLengthErrorBody(
  contextWindow: number,
  promptTokens: number,
  maxTokens: number,
): OpenAiErrorBody {
  return {
    error: {
      message:
        `This model's maximum context length is ${contextWindow} tokens. However, you requested ` +
        `${promptTokens + maxTokens} tokens (${promptTokens} in the messages, ${maxTokens} in the completion). ` +
        'Please reduce the length of the messages or completion.',
      type: 'invalid_request_error',
      param: 'messages',
      code: 'context_length_exceeded',
    },
  };
}

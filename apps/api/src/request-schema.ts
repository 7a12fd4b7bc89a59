import {
  messagesSchema,
  metadataSchema,
  refusingUnsupported,
  requestOptionsShape,
} from '@moa-queue/contract';
import { z } from 'zod';

// Messages and metadata are checked by the shared contract's schemas (the worker checks batch lines with them).
export { messageSchema, messagesSchema, metadataSchema } from '@moa-queue/contract';

/** An error map that replaces the message of a wrong-type issue only, keeping the others. */
function onlyForWrongType(message: string) {
  return (issue: { code?: string }) => (issue.code === 'invalid_type' ? message : undefined);
}

/** A webhook target: http or https only. */
export const webhookSchema = z.strictObject({
  url: z
    .string({ error: 'must be a URL string' })
    .max(2048)
    .refine((value) => {
      try {
        const url = new URL(value);
        return url.protocol === 'http:' || url.protocol === 'https:';
      } catch {
        return false;
      }
    }, 'must be an http or https URL'),
});

/**
 * Parameters `refusingUnsupported` refuses when set (`UNSUPPORTED_PARAMETER_NAMES`);
 * unset (null, false, empty) they pass, as on chat completions.
 */
const unsupportedWhenUnset = {
  logprobs: z.unknown().optional(),
  top_logprobs: z.unknown().optional(),
  tools: z.unknown().optional(),
  tool_choice: z.unknown().optional(),
  functions: z.unknown().optional(),
  function_call: z.unknown().optional(),
  parallel_tool_calls: z.unknown().optional(),
  audio: z.unknown().optional(),
  modalities: z.unknown().optional(),
  prediction: z.unknown().optional(),
  web_search_options: z.unknown().optional(),
};

/**
 * Body of `POST /v1/jobs`: the chat completion's request options too
 * (sampling and `response_format` for the aggregator, `max_tokens`), with
 * the same ranges and the same refusals; any other key is refused.
 */
export const createJobSchema = refusingUnsupported(
  z.strictObject(
    {
      preset: z
        .string({ error: 'must be a string' })
        .min(1, 'must not be empty')
        .max(128, 'must be at most 128 characters')
        .optional(),
      messages: messagesSchema,
      webhook: webhookSchema.optional(),
      metadata: metadataSchema.optional(),
      ...requestOptionsShape,
      ...unsupportedWhenUnset,
    },
    // Only a body of the wrong type gets this message; an unknown key keeps zod's.
    { error: onlyForWrongType('request body must be a JSON object') },
  ),
);

export type CreateJobBody = z.output<typeof createJobSchema>;

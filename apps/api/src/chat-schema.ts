import { z } from 'zod';
import { messagesSchema, metadataSchema } from './request-schema.js';

const tokenLimit = z.number({ error: 'must be an integer' }).int('must be an integer').min(1).max(1_000_000);

/**
 * Body of `POST /v1/chat/completions`. Other OpenAI parameters are accepted
 * and ignored (a preset fixes each agent's sampling), except those whose
 * meaning we cannot honour, which are refused.
 */
export const chatCompletionSchema = z.object(
  {
    model: z.string({ error: 'must be a string naming a preset' }).min(1).max(128),
    messages: messagesSchema,
    stream: z.boolean({ error: 'must be a boolean' }).nullish(),
    stream_options: z
      .object(
        { include_usage: z.boolean({ error: 'must be a boolean' }).nullish() },
        { error: 'must be an object' },
      )
      .nullish(),
    max_tokens: tokenLimit.nullish(),
    max_completion_tokens: tokenLimit.nullish(),
    n: z.literal(1, { error: 'only n=1 is supported' }).nullish(),
    tools: z.array(z.unknown()).max(0, 'tools are not supported by MoA presets').nullish(),
    metadata: metadataSchema.nullish(),
  },
  { error: 'request body must be a JSON object' },
);

export type ChatCompletionBody = z.infer<typeof chatCompletionSchema>;

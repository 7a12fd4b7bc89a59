import { z } from 'zod';

const MAX_MESSAGES = 2048;
const MAX_CONTENT_CHARACTERS = 1_000_000;

const textPart = z.object({ type: z.literal('text'), text: z.string() });

/** A chat message: content as a string or OpenAI text parts, joined into one string. */
export const messageSchema = z
  .object({
    role: z.enum(['system', 'developer', 'user', 'assistant'], {
      error: 'must be one of system, developer, user, assistant',
    }),
    content: z.union([z.string(), z.array(textPart).min(1)], {
      error: 'must be a string or an array of text parts',
    }),
    name: z.string().max(64).optional(),
  })
  .transform((message) => ({
    role: message.role,
    content: typeof message.content === 'string' ? message.content : message.content.map((part) => part.text).join(''),
  }))
  .refine((message) => message.content.length <= MAX_CONTENT_CHARACTERS, {
    message: `content is longer than ${MAX_CONTENT_CHARACTERS} characters`,
    path: ['content'],
  });

/** A list of messages that ends with something to answer. */
export const messagesSchema = z
  .array(messageSchema, { error: 'must be an array of messages' })
  .min(1, 'must contain at least one message')
  .max(MAX_MESSAGES, `must contain at most ${MAX_MESSAGES} messages`)
  .refine((messages) => messages.some((message) => message.role === 'user' && message.content.trim().length > 0), {
    message: 'must contain a user message with non-empty content',
  });

/** OpenAI's metadata limits: at most 16 keys of up to 64 characters, string values up to 512. */
export const metadataSchema = z
  .record(z.string().max(64, 'keys must be at most 64 characters'), z.string().max(512, 'values must be at most 512 characters'), {
    error: 'must be an object of string values',
  })
  .refine((metadata) => Object.keys(metadata).length <= 16, { message: 'must have at most 16 keys' });

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

/** Body of `POST /v1/jobs`. */
export const createJobSchema = z.strictObject(
  {
    preset: z.string({ error: 'must be a string' }).min(1).max(128).optional(),
    messages: messagesSchema,
    webhook: webhookSchema.optional(),
    metadata: metadataSchema.optional(),
  },
  { error: 'request body must be a JSON object' },
);

export type CreateJobBody = z.infer<typeof createJobSchema>;

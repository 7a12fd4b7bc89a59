import { z } from 'zod';
import { refusingUnsupported, requestOptionsShape } from './request-options.js';

/*
 * What a chat request must look like, wherever it comes in: `POST
 * /v1/chat/completions` and `POST /v1/jobs` in the API, and every line of a
 * batch input file, which the worker validates. One definition, so a batch
 * line is checked exactly as the chat endpoint checks its body.
 */

const MAX_MESSAGES = 2048;
const MAX_CONTENT_CHARACTERS = 1_000_000;

/** An error map that replaces the message of a wrong-type issue only, keeping the others. */
function onlyForWrongType(message: string) {
  return (issue: { code?: string }) => (issue.code === 'invalid_type' ? message : undefined);
}

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
    content:
      typeof message.content === 'string'
        ? message.content
        : message.content.map((part) => part.text).join(''),
  }))
  // Refinements also run after a non-aborting issue (an empty parts array),
  // when the transform has not run: check the type before using the value.
  .refine(
    (message) => typeof message.content !== 'string' || message.content.length <= MAX_CONTENT_CHARACTERS,
    {
      message: `content is longer than ${MAX_CONTENT_CHARACTERS} characters`,
      path: ['content'],
    },
  );

/** A list of messages that ends with something to answer. */
export const messagesSchema = z
  .array(messageSchema, { error: 'must be an array of messages' })
  .min(1, 'must contain at least one message')
  .max(MAX_MESSAGES, `must contain at most ${MAX_MESSAGES} messages`)
  .refine(
    (messages) =>
      messages.some(
        (message) =>
          message.role === 'user' && typeof message.content === 'string' && message.content.trim().length > 0,
      ),
    { message: 'must contain a user message with non-empty content' },
  );

/** Metadata keys that name an object's prototype machinery. */
const FORBIDDEN_METADATA_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** OpenAI's metadata limits: at most 16 keys of up to 64 characters, string values up to 512. */
const metadataRecordSchema = z
  .record(
    z.string(),
    z.string({ error: 'values must be strings' }).max(512, 'values must be at most 512 characters'),
    {
      error: onlyForWrongType('must be an object of string values'),
    },
  )
  // Key limits are checked on the whole object, so `param` is `metadata`
  // rather than an echo of the offending key.
  .refine((metadata) => Object.keys(metadata).every((key) => key.length <= 64), {
    message: 'keys must be at most 64 characters',
  })
  .refine((metadata) => Object.keys(metadata).length <= 16, { message: 'must have at most 16 keys' });

/**
 * Metadata, with `__proto__`, `constructor` and `prototype` keys refused by
 * name. They are checked on the raw object: a record parser (zod's included)
 * drops an own `__proto__` key silently, and anything copying metadata into
 * a plain object would lose it or reach a prototype.
 */
export const metadataSchema = z.preprocess((value, context) => {
  if (typeof value === 'object' && value !== null) {
    const forbidden = Object.keys(value).find((key) => FORBIDDEN_METADATA_KEYS.has(key));
    if (forbidden !== undefined) {
      context.issues.push({
        code: 'custom',
        message: `key ${JSON.stringify(forbidden)} is not allowed`,
        input: value,
      });
    }
  }
  return value;
}, metadataRecordSchema);

/**
 * Body of `POST /v1/chat/completions`, and of every batch input line.
 * Sampling parameters and `response_format` are checked to OpenAI's ranges
 * and apply to the aggregator call (see `request-options.ts`); parameters
 * whose meaning we cannot honour (`n` > 1, `logprobs`, tools, audio, …) and
 * tool-call history are refused as `unsupported_parameter`. Other OpenAI
 * parameters (`user`, `store`, `logit_bias`, …) are accepted and ignored.
 */
export const chatCompletionSchema = refusingUnsupported(
  z.object(
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
      ...requestOptionsShape,
      metadata: metadataSchema.nullish(),
    },
    { error: 'request body must be a JSON object' },
  ),
);

export type ChatCompletionBody = z.output<typeof chatCompletionSchema>;

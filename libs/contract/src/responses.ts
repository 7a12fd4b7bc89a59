import type { AggregatorOptions, ResponseFormat } from '@moa-queue/moa';
import { z } from 'zod';
import { metadataSchema } from './chat-request-schema.js';
import { finishReasonOf, moaExtension } from './chat-completion.js';
import type { JobView } from './job-view.js';
import {
  aggregatorOptionsOf,
  policyOverridesOf,
  REQUEST_OPTION_LIMITS,
  requestOptionsShape,
  type PolicyOverrides,
  tokenLimitSchema,
  UNSUPPORTED_PARAMETER,
} from './request-options.js';

/*
 * The OpenAI Responses API subset for text generation (`POST /v1/responses`):
 * a request becomes the messages and options of a MoA request (the
 * aggregator takes `max_output_tokens`, `temperature`, `top_p` and
 * `text.format`, as with chat completions), and a finished job becomes a
 * `response` object. Nothing is stored beyond the job itself: `store: true`,
 * `previous_response_id` and `conversation` are refused.
 */

const MAX_INPUT_ITEMS = 2048;
const MAX_CONTENT_CHARACTERS = 1_000_000;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Whether a parameter is really set: not absent, null, false or an empty list. */
const given = (value: unknown): boolean =>
  value !== undefined && value !== null && value !== false && !(Array.isArray(value) && value.length === 0);

const TOOLS = 'tools are not supported by MoA presets';
const STATELESS = 'MoA Queue keeps no conversation state for responses';

/** Responses API parameters that cannot be honoured: set, they are refused by name. */
const UNSUPPORTED_RESPONSES: readonly { name: string; set: (value: unknown) => boolean; why: string }[] = [
  { name: 'previous_response_id', set: given, why: STATELESS },
  { name: 'conversation', set: given, why: STATELESS },
  { name: 'store', set: (value) => value === true, why: `${STATELESS} (send store: false or leave it out)` },
  { name: 'background', set: given, why: 'background responses are not supported; use POST /v1/jobs' },
  { name: 'tools', set: given, why: TOOLS },
  { name: 'tool_choice', set: (value) => given(value) && value !== 'none', why: TOOLS },
  { name: 'parallel_tool_calls', set: given, why: TOOLS },
  { name: 'max_tool_calls', set: given, why: TOOLS },
  { name: 'reasoning', set: given, why: 'MoA presets do not take reasoning options' },
  { name: 'include', set: given, why: 'MoA responses have no extra output to include' },
  { name: 'prompt', set: given, why: 'stored prompts are not supported' },
  {
    name: 'top_logprobs',
    set: (value) => given(value) && value !== 0,
    why: 'an answer synthesized by the aggregator has no comparable log probabilities',
  },
];

/** Adds an `unsupported_parameter` issue for every parameter above that the raw body sets. */
function checkUnsupportedResponses(body: unknown, context: { issues: z.core.$ZodRawIssue[] }): void {
  if (!isRecord(body)) return;
  for (const { name, set, why } of UNSUPPORTED_RESPONSES) {
    if (Object.hasOwn(body, name) && set(body[name])) {
      context.issues.push({
        code: 'custom',
        message: `Unsupported parameter: '${name}': ${why}.`,
        path: [name],
        input: body,
        params: { code: UNSUPPORTED_PARAMETER },
      });
    }
  }
  if (!Array.isArray(body.input)) return;
  body.input.forEach((item: unknown, index) => {
    if (!isRecord(item)) return;
    if (item.type !== undefined && item.type !== 'message') {
      context.issues.push({
        code: 'custom',
        message: `Unsupported input item type '${String(item.type)}': only messages are supported (${TOOLS}, and no stored items can be referenced).`,
        path: ['input', index, 'type'],
        input: body,
        params: { code: UNSUPPORTED_PARAMETER },
      });
      return;
    }
    if (!Array.isArray(item.content)) return;
    item.content.forEach((part: unknown, partIndex) => {
      if (!isRecord(part) || part.type === 'input_text' || part.type === 'output_text') return;
      context.issues.push({
        code: 'custom',
        message: `Unsupported content part type '${String(part.type)}': MoA presets take text (input_text) only.`,
        path: ['input', index, 'content', partIndex, 'type'],
        input: body,
        params: { code: UNSUPPORTED_PARAMETER },
      });
    });
  });
}

/** A text content part: `input_text` (and `output_text`, which earlier assistant turns carry). */
const textPart = z.object(
  { type: z.enum(['input_text', 'output_text'], { error: 'must be input_text' }), text: z.string() },
  { error: 'must be an input_text part' },
);

const inputMessage = z.object(
  {
    type: z.literal('message').optional(),
    role: z.enum(['system', 'developer', 'user', 'assistant'], {
      error: 'must be one of system, developer, user, assistant',
    }),
    content: z
      .union([z.string(), z.array(textPart).min(1)], {
        error: 'must be a string or an array of input_text parts',
      })
      .transform((content) =>
        typeof content === 'string' ? content : content.map((part) => part.text).join(''),
      )
      .refine((content) => typeof content !== 'string' || content.length <= MAX_CONTENT_CHARACTERS, {
        message: `must be at most ${MAX_CONTENT_CHARACTERS} characters`,
      }),
  },
  { error: 'must be a message' },
);

/** The Responses API's `text.format`, with its flattened `json_schema` shape. */
const textFormatSchema = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('text') }),
    z.object({ type: z.literal('json_object') }),
    z.object({
      type: z.literal('json_schema'),
      name: z
        .string({ error: 'must be a string' })
        .regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, underscores or dashes'),
      description: z
        .string({ error: 'must be a string' })
        .max(REQUEST_OPTION_LIMITS.maxSchemaDescriptionCharacters)
        .optional(),
      schema: z
        .record(z.string(), z.unknown(), { error: 'must be a JSON Schema object' })
        .refine((schema) => JSON.stringify(schema).length <= REQUEST_OPTION_LIMITS.maxSchemaCharacters, {
          message: `must be at most ${REQUEST_OPTION_LIMITS.maxSchemaCharacters} characters as JSON`,
        })
        .optional(),
      strict: z.boolean({ error: 'must be a boolean' }).nullish(),
    }),
  ],
  { error: 'must be an object whose type is text, json_object or json_schema' },
);

/**
 * Body of `POST /v1/responses`. Other Responses API parameters (`user`,
 * `truncation`, `service_tier`, `store: false`, …) are accepted and ignored.
 */
export const responsesRequestSchema = z.preprocess(
  (value, context) => {
    checkUnsupportedResponses(value, context);
    return value;
  },
  z.object(
    {
      model: z.string({ error: 'must be a string naming a preset' }).min(1).max(128),
      input: z
        .union(
          [
            z.string().max(MAX_CONTENT_CHARACTERS, `must be at most ${MAX_CONTENT_CHARACTERS} characters`),
            z.array(inputMessage).min(1, 'must contain at least one message').max(MAX_INPUT_ITEMS),
          ],
          { error: 'must be a string or an array of messages' },
        )
        .refine(
          (input) =>
            typeof input === 'string'
              ? input.trim().length > 0
              : input.some(
                  (item) =>
                    item.role === 'user' &&
                    typeof item.content === 'string' &&
                    item.content.trim().length > 0,
                ),
          { message: 'must contain a user message with non-empty content' },
        ),
      instructions: z
        .string({ error: 'must be a string' })
        .max(MAX_CONTENT_CHARACTERS, `must be at most ${MAX_CONTENT_CHARACTERS} characters`)
        .nullish(),
      max_output_tokens: tokenLimitSchema.nullish(),
      temperature: requestOptionsShape.temperature,
      top_p: requestOptionsShape.top_p,
      text: z.object({ format: textFormatSchema.nullish() }, { error: 'must be an object' }).nullish(),
      metadata: metadataSchema.nullish(),
      stream: z.boolean({ error: 'must be a boolean' }).nullish(),
      moa: requestOptionsShape.moa,
    },
    { error: 'request body must be a JSON object' },
  ),
);

export type ResponsesRequestBody = z.output<typeof responsesRequestSchema>;

/** The chat `response_format` of a `text.format`. */
function responseFormatOf(format: z.output<typeof textFormatSchema>): ResponseFormat {
  if (format.type !== 'json_schema') return { type: format.type };
  return {
    type: 'json_schema',
    json_schema: {
      name: format.name,
      ...(format.description !== undefined ? { description: format.description } : {}),
      ...(format.schema !== undefined ? { schema: format.schema } : {}),
      ...(format.strict !== undefined && format.strict !== null ? { strict: format.strict } : {}),
    },
  };
}

/** What a MoA request takes from a Responses API body: its messages (instructions first) and options. */
export function responsesRequestOf(body: ResponsesRequestBody): {
  messages: { role: 'system' | 'developer' | 'user' | 'assistant'; content: string }[];
  maxTokens: number | undefined;
  aggregatorOptions: AggregatorOptions | undefined;
  policies: PolicyOverrides | undefined;
} {
  const messages: { role: 'system' | 'developer' | 'user' | 'assistant'; content: string }[] = [];
  if (body.instructions) messages.push({ role: 'system', content: body.instructions });
  if (typeof body.input === 'string') messages.push({ role: 'user', content: body.input });
  else for (const item of body.input) messages.push({ role: item.role, content: item.content });
  return {
    messages,
    maxTokens: body.max_output_tokens ?? undefined,
    aggregatorOptions: aggregatorOptionsOf({
      temperature: body.temperature,
      top_p: body.top_p,
      response_format: body.text?.format ? responseFormatOf(body.text.format) : undefined,
    }),
    policies: policyOverridesOf(body.moa),
  };
}

/** The response's id for a request: OpenAI's prefix, our job id inside. */
export function responseId(requestId: string): string {
  return `resp_${requestId}`;
}

/** The id of a response's one output message. */
export function responseMessageId(requestId: string): string {
  return `msg_${requestId}`;
}

/** The request fields a response object echoes. */
export interface ResponseEcho {
  instructions: string | null;
  max_output_tokens: number | null;
  temperature: number | null;
  top_p: number | null;
  text: { format: Record<string, unknown> };
}

/** The echo of a parsed body. */
export function responseEchoOf(body: ResponsesRequestBody): ResponseEcho {
  return {
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    temperature: body.temperature ?? null,
    top_p: body.top_p ?? null,
    text: { format: body.text?.format ?? { type: 'text' } },
  };
}

/** The summed usage of a job, as the Responses API names it. */
export function responseUsageOf(view: Pick<JobView, 'usage'>) {
  return {
    input_tokens: view.usage.prompt_tokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: view.usage.completion_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: view.usage.total_tokens,
  };
}

/** A response's one output message, with the text so far. */
export function responseMessage(
  requestId: string,
  text: string,
  status: 'in_progress' | 'completed' | 'incomplete',
) {
  return {
    type: 'message' as const,
    id: responseMessageId(requestId),
    status,
    role: 'assistant' as const,
    content: [{ type: 'output_text' as const, text, annotations: [] as never[], logprobs: [] as never[] }],
  };
}

/** The fields every response object has, whatever its state. */
function responseBase(
  requestId: string,
  model: string,
  createdAt: number,
  echo: ResponseEcho,
  metadata: Record<string, string>,
) {
  return {
    id: responseId(requestId),
    object: 'response' as const,
    created_at: createdAt,
    model,
    ...echo,
    metadata,
    parallel_tool_calls: false,
    tool_choice: 'none' as const,
    tools: [] as never[],
    previous_response_id: null,
    reasoning: null,
    store: false,
    background: false,
    truncation: 'disabled' as const,
    service_tier: 'default' as const,
    user: null,
  };
}

/** A response that has not finished: what `response.created` and `response.in_progress` carry. */
export function pendingResponseOf(
  requestId: string,
  model: string,
  createdAt: number,
  echo: ResponseEcho,
  metadata: Record<string, string>,
) {
  return {
    ...responseBase(requestId, model, createdAt, echo, metadata),
    status: 'in_progress' as const,
    output: [],
    error: null,
    incomplete_details: null,
    usage: null,
  };
}

/**
 * The `response` of a finished request, usage summed over every call:
 * `incomplete` with `incomplete_details.reason: "max_output_tokens"` when the
 * aggregator stopped on its token limit, `failed` with the job's error when
 * the run failed; `moa` is the job object less its output.
 */
export function responseOf(view: JobView, echo: ResponseEcho) {
  const failed = view.status !== 'completed';
  const cut = !failed && finishReasonOf(view) === 'length';
  const status = failed ? ('failed' as const) : cut ? ('incomplete' as const) : ('completed' as const);
  return {
    ...responseBase(view.id, view.preset, view.created_at, echo, view.metadata),
    status,
    completed_at: failed ? null : view.completed_at,
    output: failed ? [] : [responseMessage(view.id, view.output ?? '', cut ? 'incomplete' : 'completed')],
    error: failed
      ? { code: view.error?.code ?? 'moa_failed', message: view.error?.message ?? 'the MoA request failed' }
      : null,
    incomplete_details: cut ? { reason: 'max_output_tokens' as const } : null,
    usage: responseUsageOf(view),
    moa: moaExtension(view),
  };
}

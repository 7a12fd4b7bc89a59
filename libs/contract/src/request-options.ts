import type { AggregatorOptions, PresetConfig, ResponseFormat } from '@moa-queue/moa';
import { z } from 'zod';

/*
 * The OpenAI request parameters a MoA request takes (chat completions, jobs
 * and batch lines alike), checked to OpenAI's ranges, and those it refuses
 * because it cannot honour them. Sampling parameters and `response_format`
 * apply to the aggregator call only: proposers keep their preset's sampling,
 * which is what keeps the mixture diverse.
 */

/** The code of an error that names a parameter the server cannot honour (OpenAI's). */
export const UNSUPPORTED_PARAMETER = 'unsupported_parameter';

/** Limits of the request options, shared by the API's schema and the worker's job data schema. */
export const REQUEST_OPTION_LIMITS = {
  /** OpenAI's limit on `stop`. */
  maxStopSequences: 4,
  /** Characters of one stop sequence. */
  maxStopCharacters: 1000,
  /** Characters of `response_format.json_schema.description`. */
  maxSchemaDescriptionCharacters: 10_000,
  /** Characters of `response_format.json_schema.schema` as JSON. */
  maxSchemaCharacters: 1_000_000,
} as const;

const LIMITS = REQUEST_OPTION_LIMITS;

/** An error map that replaces the message of a wrong-type issue only, keeping the others. */
function onlyForWrongType(message: string) {
  return (issue: { code?: string }) => (issue.code === 'invalid_type' ? message : undefined);
}

/** A number within OpenAI's bounds for a parameter; the message names them. */
function bounded(min: number, max: number) {
  const message = `must be a number from ${min} to ${max}`;
  return z
    .number({ error: onlyForWrongType(message) })
    .min(min, `must be at least ${min} (a number from ${min} to ${max})`)
    .max(max, `must be at most ${max} (a number from ${min} to ${max})`);
}

/** `max_tokens` and `max_completion_tokens`: a positive integer. */
export const tokenLimitSchema = z
  .number({ error: onlyForWrongType('must be an integer of at least 1') })
  .int('must be an integer of at least 1')
  .min(1, 'must be at least 1')
  .max(1_000_000, 'must be at most 1000000');

/** The JSON schema of `json_schema`: any object, bounded in size. */
const jsonSchemaObject = z
  .record(z.string(), z.unknown(), { error: onlyForWrongType('must be a JSON Schema object') })
  .refine((schema) => JSON.stringify(schema).length <= LIMITS.maxSchemaCharacters, {
    message: `must be at most ${LIMITS.maxSchemaCharacters} characters as JSON`,
  });

/** OpenAI's `response_format`: `text`, `json_object`, or `json_schema` with a named schema. */
export const responseFormatSchema: z.ZodType<ResponseFormat> = z.discriminatedUnion(
  'type',
  [
    z.object({ type: z.literal('text') }),
    z.object({ type: z.literal('json_object') }),
    z.object({
      type: z.literal('json_schema'),
      json_schema: z.object(
        {
          name: z
            .string({ error: 'must be a string' })
            .regex(/^[a-zA-Z0-9_-]{1,64}$/, 'must be 1 to 64 letters, digits, underscores or dashes'),
          description: z
            .string({ error: 'must be a string' })
            .max(LIMITS.maxSchemaDescriptionCharacters)
            .optional(),
          schema: jsonSchemaObject.optional(),
          strict: z.boolean({ error: 'must be a boolean' }).nullish(),
        },
        { error: 'must be an object with a name and a schema' },
      ),
    }),
  ],
  { error: 'must be an object whose type is text, json_object or json_schema' },
);

const stopSequence = z
  .string({ error: 'must be a string or an array of at most 4 strings' })
  .max(LIMITS.maxStopCharacters, `sequences must be at most ${LIMITS.maxStopCharacters} characters`);

/**
 * The `moa` object: one request's overrides of its preset's policies
 * (DESIGN §4). A value replaces the preset's, `null` turns the preset's
 * policy off, an absent key keeps it.
 */
export const moaPoliciesSchema = z.strictObject(
  {
    max_cost_usd: z
      .number({ error: onlyForWrongType('must be a number of USD greater than 0, or null') })
      .positive('must be a number of USD greater than 0, or null')
      .max(1_000_000, 'must be at most 1000000')
      .nullish(),
    early_stop: z
      .strictObject(
        { min_agreement: bounded(0, 1) },
        { error: onlyForWrongType('must be an object {"min_agreement": <0..1>}, or null') },
      )
      .nullish(),
  },
  { error: onlyForWrongType('must be an object with max_cost_usd and/or early_stop') },
);

/** A request's overrides of its preset's policies: a value replaces, null turns off, absent keeps. */
export interface PolicyOverrides {
  maxCostUsd?: number | null;
  earlyStop?: { minAgreement: number } | null;
}

/** The policy overrides of a `moa` object; undefined when it has none. */
export function policyOverridesOf(
  moa: z.output<typeof moaPoliciesSchema> | null | undefined,
): PolicyOverrides | undefined {
  if (!moa) return undefined;
  const overrides: PolicyOverrides = {};
  if (moa.max_cost_usd !== undefined) overrides.maxCostUsd = moa.max_cost_usd;
  if (moa.early_stop !== undefined) {
    overrides.earlyStop = moa.early_stop === null ? null : { minAgreement: moa.early_stop.min_agreement };
  }
  return Object.keys(overrides).length > 0 ? overrides : undefined;
}

/** A preset with a request's policy overrides applied: the snapshot the request runs with. */
export function withPolicies(preset: PresetConfig, overrides: PolicyOverrides | undefined): PresetConfig {
  if (!overrides) return preset;
  const { earlyStop, maxCostUsd, ...rest } = preset;
  const nextEarlyStop = overrides.earlyStop === undefined ? earlyStop : overrides.earlyStop;
  const nextMaxCostUsd = overrides.maxCostUsd === undefined ? maxCostUsd : overrides.maxCostUsd;
  return {
    ...rest,
    ...(nextEarlyStop ? { earlyStop: nextEarlyStop } : {}),
    ...(nextMaxCostUsd !== undefined && nextMaxCostUsd !== null ? { maxCostUsd: nextMaxCostUsd } : {}),
  };
}

/**
 * The request options every MoA request body may carry, as OpenAI names and
 * bounds them. `n` accepts 1 only (more is refused as unsupported before
 * this shape is checked).
 */
export const requestOptionsShape = {
  temperature: bounded(0, 2).nullish(),
  top_p: bounded(0, 1).nullish(),
  presence_penalty: bounded(-2, 2).nullish(),
  frequency_penalty: bounded(-2, 2).nullish(),
  // JSON numbers past 2^53 are not exact in JavaScript: the seed would not be the one sent.
  seed: z
    .number({ error: onlyForWrongType('must be an integer') })
    .int(`must be an integer from ${Number.MIN_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER}`)
    .nullish(),
  // A single sequence is a list of one, so the bound is checked (and named) on the list.
  stop: z
    .preprocess(
      (value) => (typeof value === 'string' ? [value] : value),
      z
        .array(stopSequence, { error: onlyForWrongType('must be a string or an array of at most 4 strings') })
        .max(LIMITS.maxStopSequences, `must be at most ${LIMITS.maxStopSequences} strings`),
    )
    .nullish(),
  response_format: responseFormatSchema.nullish(),
  max_tokens: tokenLimitSchema.nullish(),
  max_completion_tokens: tokenLimitSchema.nullish(),
  n: z
    .number({ error: onlyForWrongType('must be an integer') })
    .int('must be an integer')
    .min(1, 'must be at least 1')
    .nullish(),
  moa: moaPoliciesSchema.nullish(),
};

/** The request options as parsed by {@link requestOptionsShape}. */
export type RequestOptionsBody = {
  [K in keyof typeof requestOptionsShape]?: z.output<(typeof requestOptionsShape)[K]>;
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Whether a parameter is really set: not absent, null, false or an empty list. */
const given = (value: unknown): boolean =>
  value !== undefined && value !== null && value !== false && !(Array.isArray(value) && value.length === 0);

/**
 * Parameters a MoA request cannot honour: when set, the request is refused
 * with `unsupported_parameter` rather than answered as if they had been.
 * Each says when it counts as set, and why it is refused.
 */
const UNSUPPORTED: readonly { name: string; set: (value: unknown) => boolean; why: string }[] = [
  {
    name: 'n',
    set: (value) => typeof value === 'number' && value > 1,
    why: 'a MoA request produces one answer (n must be 1)',
  },
  {
    name: 'logprobs',
    set: given,
    why: 'an answer synthesized by the aggregator has no comparable log probabilities',
  },
  {
    name: 'top_logprobs',
    set: (value) => given(value) && value !== 0,
    why: 'an answer synthesized by the aggregator has no comparable log probabilities',
  },
  { name: 'tools', set: given, why: 'tools are not supported by MoA presets' },
  {
    name: 'tool_choice',
    set: (value) => given(value) && value !== 'none',
    why: 'tools are not supported by MoA presets',
  },
  { name: 'functions', set: given, why: 'tools are not supported by MoA presets' },
  {
    name: 'function_call',
    set: (value) => given(value) && value !== 'none',
    why: 'tools are not supported by MoA presets',
  },
  { name: 'parallel_tool_calls', set: given, why: 'tools are not supported by MoA presets' },
  { name: 'audio', set: given, why: 'MoA presets answer in text only' },
  {
    name: 'modalities',
    set: (value) => given(value) && !(Array.isArray(value) && value.every((entry) => entry === 'text')),
    why: 'MoA presets answer in text only',
  },
  { name: 'prediction', set: given, why: 'predicted outputs are not supported by MoA presets' },
  { name: 'web_search_options', set: given, why: 'web search is not supported by MoA presets' },
];

/** The names of {@link UNSUPPORTED}: a strict body schema lets them through to be refused here. */
export const UNSUPPORTED_PARAMETER_NAMES: readonly string[] = UNSUPPORTED.map((entry) => entry.name);

const TOOLS_MESSAGE =
  'tools are not supported by MoA presets, so a conversation cannot hold tool calls or results';

/**
 * Adds an `unsupported_parameter` issue (its `params.code`) for every
 * parameter the request sets that cannot be honoured, and for tool-call
 * history in its messages: an assistant message with `tool_calls` or
 * `function_call`, a `tool` or `function` message. Run on the raw body,
 * before its shape is checked, so such a request is told why rather than
 * that a role or a null content is invalid.
 */
export function checkUnsupported(body: unknown, context: { issues: z.core.$ZodRawIssue[] }): void {
  if (!isRecord(body)) return;
  const refuse = (path: (string | number)[], message: string) =>
    context.issues.push({
      code: 'custom',
      message,
      path,
      input: body,
      params: { code: UNSUPPORTED_PARAMETER },
    });
  for (const { name, set, why } of UNSUPPORTED) {
    if (Object.hasOwn(body, name) && set(body[name])) {
      refuse([name], `Unsupported parameter: '${name}': ${why}.`);
    }
  }
  if (!Array.isArray(body.messages)) return;
  body.messages.forEach((message: unknown, index) => {
    if (!isRecord(message)) return;
    if (message.role === 'tool' || message.role === 'function') {
      refuse(
        ['messages', index, 'role'],
        `Unsupported message role '${String(message.role)}': ${TOOLS_MESSAGE}.`,
      );
    } else if (message.role === 'assistant' && (given(message.tool_calls) || given(message.function_call))) {
      const field = given(message.tool_calls) ? 'tool_calls' : 'function_call';
      refuse(['messages', index, field], `Unsupported assistant message with ${field}: ${TOOLS_MESSAGE}.`);
    }
  });
}

/** A body schema that refuses unsupported parameters and tool-call history first (see {@link checkUnsupported}). */
export function refusingUnsupported<T extends z.ZodType>(schema: T) {
  return z.preprocess((value, context) => {
    checkUnsupported(value, context);
    return value;
  }, schema);
}

/** The error code a request schema's issue carries: `unsupported_parameter`, or the caller's default. */
export function requestIssueCode(issue: z.core.$ZodIssue | undefined, fallback: string): string {
  const code = (issue as { params?: { code?: unknown } } | undefined)?.params?.code;
  return typeof code === 'string' ? code : fallback;
}

/**
 * The aggregator's options from a request body: its sampling parameters and
 * `response_format` (a `text` format is the default and is not sent).
 * Undefined when the request sets none.
 */
export function aggregatorOptionsOf(body: RequestOptionsBody): AggregatorOptions | undefined {
  const options: AggregatorOptions = {};
  if (body.temperature !== undefined && body.temperature !== null) options.temperature = body.temperature;
  if (body.top_p !== undefined && body.top_p !== null) options.topP = body.top_p;
  if (body.seed !== undefined && body.seed !== null) options.seed = body.seed;
  if (body.stop && body.stop.length > 0) options.stop = [...body.stop];
  if (body.presence_penalty !== undefined && body.presence_penalty !== null)
    options.presencePenalty = body.presence_penalty;
  if (body.frequency_penalty !== undefined && body.frequency_penalty !== null)
    options.frequencyPenalty = body.frequency_penalty;
  if (body.response_format && body.response_format.type !== 'text')
    options.responseFormat = body.response_format;
  return Object.keys(options).length > 0 ? options : undefined;
}

/** The aggregator's token cap a request sets: `max_completion_tokens`, else `max_tokens` (OpenAI's precedence). */
export function maxTokensOf(body: RequestOptionsBody): number | undefined {
  return body.max_completion_tokens ?? body.max_tokens ?? undefined;
}

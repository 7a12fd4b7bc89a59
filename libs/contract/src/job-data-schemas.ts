import {
  CONFIG_NAME_PATTERN,
  parseModelId,
  TENANT_NAME_PATTERN,
  type AgentConfig,
  type AggregatorOptions,
  type CallRecord,
  type ChatMessage,
  type ContextFitRecord,
  type MoaConfig,
  type PresetConfig,
} from '@moa-queue/moa';
import { z } from 'zod';
import { BATCH_ID_PATTERN, type BatchJobData } from './batch-keys.js';
import { callJobId, parseCallJobId, REQUEST_ID_PATTERN } from './job-ids.js';
import type { CallJobData, DeadlineJobData, RequestJobData, WebhookJobData } from './payloads.js';
import { REQUEST_OPTION_LIMITS } from './request-options.js';

/*
 * Job data is read back from Redis, where anything that reaches Redis can
 * have written it (bull-board's "add job", a compromised client): workers
 * parse it with these schemas before using any of it. Objects strip unknown
 * keys rather than refuse them, so a newer producer's extra field does not
 * fail jobs on an older worker during a rolling deploy; the worker only ever
 * uses the parsed value, so a stripped key never reaches the code. Own keys
 * named `__proto__` are dropped by zod, never assigned.
 */

/** Limits of job data. Generous for what the API accepts, small enough that a forged job cannot exhaust a worker. */
export const JOB_DATA_LIMITS = {
  /** Messages of a request (the API's own limit). */
  maxMessages: 2048,
  /** Characters of a request message's content (the API's own limit). */
  maxContentCharacters: 1_000_000,
  /** Characters of a call's answer as its request stores it (a reference of the next layer). */
  maxCallContentCharacters: 10_000_000,
  /** Proposer layers of a preset. */
  maxLayers: 64,
  /** Agents in one layer. */
  maxAgentsPerLayer: 256,
  /** A `<provider>/<model>` id. */
  maxModelIdCharacters: 256,
  /** A preset or provider name. */
  maxNameCharacters: 128,
  /** A preset's `referencePrompt`, an agent's `systemPrompt`. */
  maxPromptCharacters: 1_000_000,
  maxDescriptionCharacters: 10_000,
  /** An agent's `maxTokens` (the chat completions API's own limit). */
  maxTokens: 1_000_000,
  /** A layer's straggler deadline: one day. */
  maxLayerTimeoutMs: 24 * 3600 * 1000,
  /** OpenAI's metadata limits. */
  maxMetadataKeys: 16,
  maxMetadataKeyCharacters: 64,
  maxMetadataValueCharacters: 512,
  maxUrlCharacters: 2048,
  /** A batch line's `custom_id`. */
  maxCustomIdCharacters: 512,
  /** Rounds of one call after its first: once, the aggregator with halved references. */
  maxRounds: 1,
  /** A call job id: a request id and its layer and agent numbers. */
  maxJobIdCharacters: 128,
} as const;

const L = JOB_DATA_LIMITS;

const requestIdSchema = z
  .string()
  .max(128)
  .regex(REQUEST_ID_PATTERN, { error: 'must be a request id (job_…)' });

const nameSchema = z
  .string()
  .max(L.maxNameCharacters)
  .regex(CONFIG_NAME_PATTERN, { error: 'must be a preset or provider name' });

/** `<provider>/<model>`, split by the same parser the runtime uses; the provider part must be a valid name. */
const modelIdSchema = z
  .string()
  .max(L.maxModelIdCharacters)
  .refine(
    (id) => {
      try {
        return CONFIG_NAME_PATTERN.test(parseModelId(id).provider);
      } catch {
        return false;
      }
    },
    { error: 'must be "<provider>/<model>"' },
  );

const httpUrlSchema = z
  .string()
  .max(L.maxUrlCharacters)
  .refine(
    (value) => {
      try {
        const url = new URL(value);
        return url.protocol === 'http:' || url.protocol === 'https:';
      } catch {
        return false;
      }
    },
    { error: 'must be an http or https URL' },
  );

const layerNumberSchema = z
  .int()
  .min(1)
  .max(L.maxLayers + 1);
const agentIndexSchema = z
  .int()
  .min(0)
  .max(L.maxAgentsPerLayer - 1);

function chatMessageSchema(maxContentCharacters: number) {
  return z.object({
    role: z.enum(['system', 'user', 'assistant', 'developer']),
    content: z.string().max(maxContentCharacters),
  });
}

/** One agent of a preset snapshot. */
export const agentConfigSchema = z.object({
  model: modelIdSchema,
  temperature: z.number().min(0).max(2),
  maxTokens: z.int().min(1).max(L.maxTokens),
  systemPrompt: z.string().max(L.maxPromptCharacters).optional(),
});

/** A preset snapshot as a request carries it. Structure only: see {@link jobDataSchemasFor} for the config checks. */
export const presetConfigSchema = z.object({
  name: nameSchema,
  description: z.string().max(L.maxDescriptionCharacters).optional(),
  created: z.int().min(0).optional(),
  layers: z.array(z.array(agentConfigSchema).min(1).max(L.maxAgentsPerLayer)).min(1).max(L.maxLayers),
  aggregator: agentConfigSchema,
  minProposers: z.int().min(1).max(L.maxAgentsPerLayer),
  layerTimeoutMs: z.int().min(0).max(L.maxLayerTimeoutMs),
  referencePrompt: z.string().max(L.maxPromptCharacters),
  // A request queued before presets had a format was built with the tagged layout: keep it.
  referenceFormat: z.enum(['tagged', 'paper']).default('tagged'),
  earlyStop: z.object({ minAgreement: z.number().min(0).max(1) }).optional(),
  maxCostUsd: z.number().positive().max(1e9).optional(),
});

/** A request's parameters for its aggregator call ({@link AggregatorOptions}), within OpenAI's ranges. */
export const aggregatorOptionsSchema = z.object({
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().min(0).max(1).optional(),
  seed: z.int().optional(),
  stop: z
    .array(z.string().max(REQUEST_OPTION_LIMITS.maxStopCharacters))
    .min(1)
    .max(REQUEST_OPTION_LIMITS.maxStopSequences)
    .optional(),
  presencePenalty: z.number().min(-2).max(2).optional(),
  frequencyPenalty: z.number().min(-2).max(2).optional(),
  responseFormat: z
    .discriminatedUnion('type', [
      z.object({ type: z.literal('text') }),
      z.object({ type: z.literal('json_object') }),
      z.object({
        type: z.literal('json_schema'),
        json_schema: z.object({
          name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/),
          description: z.string().max(REQUEST_OPTION_LIMITS.maxSchemaDescriptionCharacters).optional(),
          schema: z
            .record(z.string(), z.unknown())
            .refine((schema) => JSON.stringify(schema).length <= REQUEST_OPTION_LIMITS.maxSchemaCharacters, {
              error: `must be at most ${REQUEST_OPTION_LIMITS.maxSchemaCharacters} characters as JSON`,
            })
            .optional(),
          strict: z.boolean().nullish(),
        }),
      }),
    ])
    .optional(),
});

const metadataSchema = z
  .record(z.string().max(L.maxMetadataKeyCharacters), z.string().max(L.maxMetadataValueCharacters))
  .refine((metadata) => Object.keys(metadata).length <= L.maxMetadataKeys, {
    error: `must have at most ${L.maxMetadataKeys} keys`,
  });

/**
 * Data of an orchestrator job ({@link RequestJobData}). A job written before
 * requests had an owner has no `tenant`: it belongs to `default`.
 */
export const requestJobDataSchema = z
  .object({
    requestId: requestIdSchema,
    tenant: z.string().regex(TENANT_NAME_PATTERN, { error: 'must be a tenant name' }).default('default'),
    preset: presetConfigSchema,
    messages: z.array(chatMessageSchema(L.maxContentCharacters)).min(1).max(L.maxMessages),
    metadata: metadataSchema,
    webhook: z.object({ url: httpUrlSchema }).optional(),
    createdAt: z.int().min(0),
    stream: z.boolean().optional(),
    source: z.enum(['jobs', 'chat', 'batch']).optional(),
    batch: z
      .object({
        id: z.string().regex(BATCH_ID_PATTERN, { error: 'must be a batch id (batch_…)' }),
        customId: z.string().min(1).max(L.maxCustomIdCharacters),
        response: z
          .object({
            instructions: z.string().max(L.maxContentCharacters).nullable(),
            max_output_tokens: z.int().min(1).nullable(),
            temperature: z.number().min(0).max(2).nullable(),
            top_p: z.number().min(0).max(1).nullable(),
            text: z.object({ format: z.record(z.string(), z.unknown()) }),
          })
          .optional(),
      })
      .optional(),
    aggregatorOptions: aggregatorOptionsSchema.optional(),
  })
  .superRefine((data, context) => {
    // A batch item's request id is derived from its batch (batchItemRequestId): an item names only its own batch.
    if (data.batch && !data.requestId.startsWith(`job_${data.batch.id.slice('batch_'.length)}x`)) {
      context.addIssue({
        code: 'custom',
        path: ['batch', 'id'],
        message: 'is not the batch of this request id',
      });
    }
  });

/** Data of one LLM call job ({@link CallJobData}). */
export const callJobDataSchema = z.object({
  requestId: requestIdSchema,
  presetName: nameSchema,
  layer: layerNumberSchema,
  role: z.enum(['proposer', 'aggregator']),
  agentIndex: agentIndexSchema,
  agent: agentConfigSchema,
  round: z.int().min(1).max(L.maxRounds).optional(),
  referenceShare: z.number().gt(0).lt(1).optional(),
});

/**
 * A call's record as its job returns it (`CallJobResult`, before the
 * orchestrator adds what fitting its prompt changed), read back from its
 * request's `:processed` hash.
 */
export const returnedCallRecordSchema = z.object({
  model: modelIdSchema,
  agentIndex: agentIndexSchema,
  status: z.enum(['completed', 'failed']),
  output: z.string().max(L.maxCallContentCharacters).nullable(),
  usage: z.object({ promptTokens: z.int().min(0), completionTokens: z.int().min(0) }),
  costUsd: z.number().min(0).nullable(),
  latencyMs: z.number().min(0),
  attempts: z.int().min(0),
  startedAt: z.number().min(0),
  finishedAt: z.number().min(0),
  finishReason: z.string().max(L.maxNameCharacters).nullable(),
  error: z.object({ message: z.string(), type: z.string(), code: z.string().nullable() }).nullable(),
});

/**
 * What a call job reads of its request's stored progress (`RequestProgress`):
 * each recorded layer's calls, as far as a prompt is built from them. Other
 * fields are stripped; the call never writes the progress back.
 */
export const storedReferenceLayersSchema = z.object({
  layers: z
    .array(
      z.object({
        layer: layerNumberSchema,
        role: z.enum(['proposer', 'aggregator']),
        calls: z
          .array(
            z.object({
              agentIndex: agentIndexSchema,
              status: z.enum(['completed', 'failed']),
              output: z.string().max(L.maxCallContentCharacters).nullable(),
              finishReason: z.string().max(L.maxNameCharacters).nullable(),
            }),
          )
          .max(L.maxAgentsPerLayer),
      }),
    )
    // Every proposer layer and the aggregator, run at most twice.
    .max(L.maxLayers + 2),
});

/** Data of a layer-deadline job ({@link DeadlineJobData}); every call named must be one of the request's layer. */
export const deadlineJobDataSchema = z
  .object({
    requestId: requestIdSchema,
    layer: layerNumberSchema,
    layerTimeoutMs: z.int().min(1).max(L.maxLayerTimeoutMs),
    calls: z
      .array(z.object({ jobId: z.string().max(L.maxJobIdCharacters), provider: nameSchema }))
      .min(1)
      .max(L.maxAgentsPerLayer),
  })
  .superRefine((data, context) => {
    data.calls.forEach((call, index) => {
      const parts = parseCallJobId(call.jobId);
      const ofLayer =
        parts?.requestId === data.requestId &&
        parts.layer === data.layer &&
        parts.agentIndex < L.maxAgentsPerLayer &&
        callJobId(parts.requestId, parts.layer, parts.agentIndex) === call.jobId;
      if (!ofLayer) {
        context.addIssue({
          code: 'custom',
          path: ['calls', index, 'jobId'],
          message: `is not a call of layer ${data.layer} of this request`,
        });
      }
    });
  });

/** Data of a webhook delivery job ({@link WebhookJobData}). */
export const webhookJobDataSchema = z.object({
  requestId: requestIdSchema,
  url: httpUrlSchema,
});

/** Data of a job on the batches queue ({@link BatchJobData}). */
export const batchJobDataSchema = z.object({
  batchId: z.string().regex(BATCH_ID_PATTERN, { error: 'must be a batch id (batch_…)' }),
});

/** The schemas of every queue's job data, checked against one config: what a worker parses with. */
export interface JobDataSchemas {
  request: z.ZodType<RequestJobData>;
  call: z.ZodType<CallJobData>;
  deadline: z.ZodType<DeadlineJobData>;
  webhook: z.ZodType<WebhookJobData>;
  batch: z.ZodType<BatchJobData>;
}

/** Adds config checks that run only on data that already has the schema's structure. */
function checkedAgainst<T>(
  schema: z.ZodType<T, unknown>,
  check: (value: T, context: z.RefinementCtx<T>) => void,
) {
  return schema.pipe(z.custom<T>().superRefine(check));
}

/**
 * The job data schemas with the checks that need the config.
 *
 * Rule for a request's preset snapshot: the snapshot need NOT equal the
 * configured preset of its name. It is taken when the request is accepted
 * precisely so that config changes never alter a running request (and the
 * API may adjust it, e.g. the aggregator's `maxTokens` from a chat
 * completion's `max_tokens`). But its `name` must be a preset of this config
 * (an own property of `config.presets`), and every agent's model, the
 * aggregator's too, must name a provider of this config (an own property of
 * `config.providers`): a worker only ever calls a provider the operator
 * configured, with that provider's base URL, key and limits, and the preset
 * name it reports is one the operator chose. A model itself need not be in
 * the config (a model without a price is a valid preset agent); its metric
 * label is then `other`. A call job is held to the same rule: its
 * `presetName` must be configured and its agent's provider too. A deadline
 * job may only name configured providers.
 */
export function jobDataSchemasFor(config: MoaConfig): JobDataSchemas {
  const unknownProvider = (modelId: string): string | undefined => {
    const { provider } = parseModelId(modelId);
    return Object.hasOwn(config.providers, provider)
      ? undefined
      : `unknown provider ${JSON.stringify(provider)}: not in the config`;
  };
  const checkAgent = (
    agent: AgentConfig,
    path: (string | number)[],
    context: z.RefinementCtx<unknown>,
  ): void => {
    const problem = unknownProvider(agent.model);
    if (problem) context.addIssue({ code: 'custom', path: [...path, 'model'], message: problem });
  };
  const checkPresetName = (name: string, path: string[], context: z.RefinementCtx<unknown>): void => {
    if (!Object.hasOwn(config.presets, name)) {
      context.addIssue({
        code: 'custom',
        path,
        message: `unknown preset ${JSON.stringify(name)}: not in the config`,
      });
    }
  };

  return {
    request: checkedAgainst<RequestJobData>(requestJobDataSchema, (data, context) => {
      checkPresetName(data.preset.name, ['preset', 'name'], context);
      data.preset.layers.forEach((layer, layerIndex) =>
        layer.forEach((agent, agentIndex) =>
          checkAgent(agent, ['preset', 'layers', layerIndex, agentIndex], context),
        ),
      );
      checkAgent(data.preset.aggregator, ['preset', 'aggregator'], context);
    }),
    call: checkedAgainst<CallJobData>(callJobDataSchema, (data, context) => {
      checkPresetName(data.presetName, ['presetName'], context);
      checkAgent(data.agent, ['agent'], context);
      // Only an aggregator is ever run again (with halved references after exceeding its context).
      if (data.round !== undefined && data.role !== 'aggregator') {
        context.addIssue({ code: 'custom', path: ['round'], message: 'is for an aggregator call only' });
      }
      if (data.referenceShare !== undefined && data.round === undefined) {
        context.addIssue({
          code: 'custom',
          path: ['referenceShare'],
          message: 'is for an aggregator call run again only',
        });
      }
    }),
    deadline: checkedAgainst<DeadlineJobData>(deadlineJobDataSchema, (data, context) => {
      data.calls.forEach((call, index) => {
        if (!Object.hasOwn(config.providers, call.provider)) {
          context.addIssue({
            code: 'custom',
            path: ['calls', index, 'provider'],
            message: `unknown provider ${JSON.stringify(call.provider)}: not in the config`,
          });
        }
      });
    }),
    webhook: webhookJobDataSchema,
    batch: batchJobDataSchema,
  };
}

// Compile-time proof that each schema's output is exactly its TypeScript type:
// a field added to, removed from or changed in either one fails `tsc`.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type AllTrue<T extends readonly true[]> = T;
/** Never used at run time; it exists so that the schemas and the payload types cannot drift apart. */
export type JobDataSchemasMatchTypes = AllTrue<
  [
    Equals<z.output<typeof requestJobDataSchema>, RequestJobData>,
    Equals<z.output<typeof callJobDataSchema>, CallJobData>,
    Equals<z.output<typeof deadlineJobDataSchema>, DeadlineJobData>,
    Equals<z.output<typeof webhookJobDataSchema>, WebhookJobData>,
    Equals<z.output<typeof batchJobDataSchema>, BatchJobData>,
    Equals<z.output<typeof presetConfigSchema>, PresetConfig>,
    Equals<z.output<typeof agentConfigSchema>, AgentConfig>,
    Equals<z.output<typeof aggregatorOptionsSchema>, AggregatorOptions>,
    Equals<z.output<ReturnType<typeof chatMessageSchema>>, ChatMessage>,
    Equals<z.output<typeof returnedCallRecordSchema>, Omit<CallRecord, keyof ContextFitRecord>>,
  ]
>;

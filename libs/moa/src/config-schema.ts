import { z } from 'zod';
import { parseModelId } from './model-id.js';

/**
 * Allowed names of providers and presets. They become queue names and the
 * OpenAI `model` names clients send, so they stay lowercase and free of
 * characters with meaning in URLs or Redis keys.
 */
export const CONFIG_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]*$/;

const nameSchema = z.string().regex(CONFIG_NAME_PATTERN, {
  error: 'must be lowercase letters, digits, ".", "_" or "-", starting with a letter or digit',
});

/** `<provider>/<model id as the provider knows it>`, checked by the same parser the runtime uses. */
const modelIdSchema = z.string().refine(
  (id) => {
    try {
      parseModelId(id);
      return true;
    } catch {
      return false;
    }
  },
  { error: 'must be "<provider>/<model>", e.g. "together/Qwen/Qwen2.5-72B-Instruct-Turbo"' },
);

const positiveIntSchema = z.int().min(1);

/**
 * A provider entry of the config file. Every field is optional because an
 * entry is merged field by field over a built-in provider of the same name; a
 * new provider's missing `baseURL` is reported by the loader.
 */
export const providerFileSchema = z.strictObject({
  baseURL: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).optional(),
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be an environment variable name' })
    .optional(),
  concurrency: positiveIntSchema.optional(),
  requestsPerMinute: positiveIntSchema.optional(),
  timeoutMs: positiveIntSchema.optional(),
  maxAttempts: z.int().min(1).max(20).optional(),
});

/** A model of the config file: its price in USD per million tokens and, optionally, its context window in tokens. */
export const modelPricingFileSchema = z.strictObject({
  inputCostPerMTok: z.number().min(0),
  outputCostPerMTok: z.number().min(0),
  contextWindow: positiveIntSchema.optional(),
});

/** An agent of a preset; only `model` is required, the loader fills in the rest. */
export const agentFileSchema = z.strictObject({
  model: modelIdSchema,
  temperature: z.number().min(0).max(2).optional(),
  maxTokens: positiveIntSchema.optional(),
  systemPrompt: z.string().optional(),
});

/** A preset of the config file; it replaces a built-in preset of the same name as a whole. */
export const presetFileSchema = z.strictObject({
  description: z.string().optional(),
  /** When the preset was made, as `/v1/models` reports it: a date (`2026-01-31`) or epoch seconds. */
  created: z.union([z.int().min(0), z.iso.date()]).optional(),
  layers: z.array(z.array(agentFileSchema).min(1)).min(1),
  aggregator: agentFileSchema,
  minProposers: positiveIntSchema.optional(),
  layerTimeoutMs: z.int().min(0).optional(),
  referencePrompt: z.string().optional(),
  referenceFormat: z.enum(['tagged', 'paper']).optional(),
  earlyStop: z
    .strictObject(
      {
        minAgreement: z
          .number({ error: 'must be a number from 0 to 1' })
          .min(0, 'must be a number from 0 to 1')
          .max(1, 'must be a number from 0 to 1'),
      },
      { error: 'must be an object { minAgreement: <0..1> }' },
    )
    .optional(),
  maxCostUsd: z
    .number({ error: 'must be a number of USD greater than 0' })
    .positive('must be a number of USD greater than 0')
    .optional(),
});

/** Webhook settings; each field given replaces the default. */
export const webhooksFileSchema = z.strictObject({
  allowHosts: z.array(z.string().min(1)).optional(),
  retryScheduleMs: z.array(z.int().min(0)).min(1).optional(),
  retryHorizonMs: z.int().min(0).optional(),
});

/** Tenant names: the `name` of a `name:key` entry of `MOA_API_KEYS` or `MOA_ADMIN_KEYS`. */
export const TENANT_NAME_PATTERN = /^[a-z0-9_-]{1,64}$/;

/** A Standard Webhooks signing secret: `whsec_` then base64. */
export const WEBHOOK_SECRET_PATTERN = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

/** Quotas of the config file: defaults (`quotas`) or one tenant's (`tenants.<name>.quotas`). */
export const quotasFileSchema = z.strictObject({
  maxActiveJobs: positiveIntSchema.optional(),
  maxActiveBatchItems: positiveIntSchema.optional(),
  maxFileBytes: positiveIntSchema.optional(),
  maxStreams: positiveIntSchema.optional(),
});

/** Settings of one tenant; its key itself stays in `MOA_API_KEYS`. */
export const tenantFileSchema = z.strictObject({
  webhookSecret: z
    .string()
    .regex(WEBHOOK_SECRET_PATTERN, { error: 'must be whsec_ followed by base64' })
    .optional(),
  quotas: quotasFileSchema.optional(),
});

/**
 * The config file (DESIGN §3), before it is merged over the built-ins.
 * Objects are strict: an unknown key is an error naming it, so a typo such as
 * `concurency` cannot silently fall back to a default.
 */
export const moaConfigFileSchema = z.strictObject({
  providers: z.record(nameSchema, providerFileSchema).optional(),
  models: z.record(modelIdSchema, modelPricingFileSchema).optional(),
  presets: z.record(nameSchema, presetFileSchema).optional(),
  defaultPreset: z.string().min(1).optional(),
  webhooks: webhooksFileSchema.optional(),
  quotas: quotasFileSchema.optional(),
  tenants: z
    .preprocess(
      (value, context) => {
        // A record parser drops an own "__proto__" key silently; a config file must hear about it.
        if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
          context.issues.push({
            code: 'custom',
            message: '"__proto__" is not allowed as a tenant name',
            input: value,
          });
        }
        return value;
      },
      z.record(
        z.string().regex(TENANT_NAME_PATTERN, { error: 'must be 1 to 64 of a-z, 0-9, "_" or "-"' }),
        tenantFileSchema,
      ),
    )
    .optional(),
});

/** The config file as validated by {@link moaConfigFileSchema}. */
export type MoaConfigFile = z.infer<typeof moaConfigFileSchema>;
/** A provider entry of the config file. */
export type ProviderFile = z.infer<typeof providerFileSchema>;
/** A preset entry of the config file. */
export type PresetFile = z.infer<typeof presetFileSchema>;
/** An agent entry of the config file. */
export type AgentFile = z.infer<typeof agentFileSchema>;

import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { CONFIG_DEFAULTS, builtInConfig } from './built-in-config.js';
import { ConfigError, type ConfigIssue } from './config-error.js';
import { moaConfigFileSchema, type AgentFile, type PresetFile, type ProviderFile } from './config-schema.js';
import { parseModelId } from './model-id.js';
import { DEFAULT_REFERENCE_PROMPT, PAPER_REFERENCE_PROMPT } from './references.js';
import type { AgentConfig, ModelPricing, MoaConfig, PresetConfig, ProviderConfig, Quotas } from './types.js';

/** Dotted form of a zod path: `['presets', 'moa', 'layers', 0, 1, 'model']` → `presets.moa.layers.0.1.model`. */
function dottedPath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

/** One zod issue as config issues, naming unknown keys one by one so each gets its own path. */
function toConfigIssues(issue: z.core.$ZodIssue): ConfigIssue[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: dottedPath([...issue.path, key]),
      reason: `unknown key ${JSON.stringify(key)}`,
    }));
  }
  if (issue.code === 'invalid_key') {
    const key = issue.path.at(-1);
    const detail = issue.issues[0]?.message ?? issue.message;
    return [
      { path: dottedPath(issue.path), reason: `invalid key ${JSON.stringify(String(key))}: ${detail}` },
    ];
  }
  return [{ path: dottedPath(issue.path), reason: issue.message }];
}

/** A ConfigError for a failed parse: the first issue named in `path`, the rest listed in the message. */
function schemaError(source: string, issues: readonly z.core.$ZodIssue[]): ConfigError {
  const [first, ...rest] = issues.flatMap(toConfigIssues);
  if (first === undefined) return new ConfigError(source, '', 'invalid');
  return new ConfigError(source, first.path, first.reason, { moreIssues: rest });
}

/** The provider the loader builds from a file entry, merged over a built-in of the same name when there is one. */
function mergeProvider(
  source: string,
  name: string,
  entry: ProviderFile,
  base: ProviderConfig | undefined,
): ProviderConfig {
  const baseURL = entry.baseURL ?? base?.baseURL;
  if (baseURL === undefined) {
    throw new ConfigError(
      source,
      `providers.${name}.baseURL`,
      'required for a provider that is not built in',
    );
  }
  const apiKeyEnv = entry.apiKeyEnv ?? base?.apiKeyEnv;
  const requestsPerMinute = entry.requestsPerMinute ?? base?.requestsPerMinute;
  return {
    name,
    baseURL,
    // Absent rather than undefined, so the resolved config serialises the same way as the built-ins.
    ...(apiKeyEnv === undefined ? {} : { apiKeyEnv }),
    concurrency: entry.concurrency ?? base?.concurrency ?? CONFIG_DEFAULTS.provider.concurrency,
    ...(requestsPerMinute === undefined ? {} : { requestsPerMinute }),
    timeoutMs: entry.timeoutMs ?? base?.timeoutMs ?? CONFIG_DEFAULTS.provider.timeoutMs,
    maxAttempts: entry.maxAttempts ?? base?.maxAttempts ?? CONFIG_DEFAULTS.provider.maxAttempts,
  };
}

/** An agent with its defaults filled in; proposers and the aggregator differ only in `maxTokens`. */
function toAgent(entry: AgentFile, defaultMaxTokens: number): AgentConfig {
  return {
    model: entry.model,
    temperature: entry.temperature ?? CONFIG_DEFAULTS.agent.temperature,
    maxTokens: entry.maxTokens ?? defaultMaxTokens,
    ...(entry.systemPrompt === undefined ? {} : { systemPrompt: entry.systemPrompt }),
  };
}

/** A preset's `created` (a date or epoch seconds) in epoch seconds. */
function createdSeconds(created: PresetFile['created']): number {
  if (created === undefined) return CONFIG_DEFAULTS.preset.created;
  if (typeof created === 'number') return created;
  return Date.parse(`${created}T00:00:00Z`) / 1000;
}

/** A preset with its defaults filled in. */
function toPreset(name: string, entry: PresetFile): PresetConfig {
  const referenceFormat = entry.referenceFormat ?? CONFIG_DEFAULTS.preset.referenceFormat;
  return {
    name,
    ...(entry.description === undefined ? {} : { description: entry.description }),
    created: createdSeconds(entry.created),
    layers: entry.layers.map((layer) =>
      layer.map((agent) => toAgent(agent, CONFIG_DEFAULTS.agent.proposerMaxTokens)),
    ),
    aggregator: toAgent(entry.aggregator, CONFIG_DEFAULTS.agent.aggregatorMaxTokens),
    minProposers: entry.minProposers ?? CONFIG_DEFAULTS.preset.minProposers,
    layerTimeoutMs: entry.layerTimeoutMs ?? CONFIG_DEFAULTS.preset.layerTimeoutMs,
    // Each format has its own default instruction: ours tells the model about the delimiters,
    // the paper's is the reference implementation's text.
    referencePrompt:
      entry.referencePrompt ??
      (referenceFormat === 'paper' ? PAPER_REFERENCE_PROMPT : DEFAULT_REFERENCE_PROMPT),
    referenceFormat,
    ...(entry.earlyStop === undefined ? {} : { earlyStop: { minAgreement: entry.earlyStop.minAgreement } }),
    ...(entry.maxCostUsd === undefined ? {} : { maxCostUsd: entry.maxCostUsd }),
  };
}

/** Own-key lookup: config maps are plain objects, and names such as `constructor` must not hit the prototype. */
function ownEntry<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Names of a map for an error message, so the reader sees what would have been accepted. */
function knownNames(record: Record<string, unknown>): string {
  return Object.keys(record).join(', ');
}

/** Checks that need the merged config: references between sections and limits across fields. */
function crossCheck(source: string, config: MoaConfig): void {
  const checkProvider = (path: string, modelId: string): void => {
    const { provider } = parseModelId(modelId);
    if (ownEntry(config.providers, provider) === undefined) {
      throw new ConfigError(
        source,
        path,
        `unknown provider ${JSON.stringify(provider)} (known: ${knownNames(config.providers)})`,
      );
    }
  };

  for (const [name, preset] of Object.entries(config.presets)) {
    preset.layers.forEach((layer, layerIndex) =>
      layer.forEach((agent, agentIndex) =>
        checkProvider(`presets.${name}.layers.${layerIndex}.${agentIndex}.model`, agent.model),
      ),
    );
    checkProvider(`presets.${name}.aggregator.model`, preset.aggregator.model);

    // A layer smaller than minProposers could never succeed, so every request would fail at run time.
    const smallestLayer = Math.min(...preset.layers.map((layer) => layer.length));
    if (preset.minProposers > smallestLayer) {
      throw new ConfigError(
        source,
        `presets.${name}.minProposers`,
        `${preset.minProposers} exceeds the number of agents in the smallest layer (${smallestLayer})`,
      );
    }
  }

  // A price under a misspelt provider would never apply; report it rather than leave costs silently null.
  for (const modelId of Object.keys(config.models)) checkProvider(`models.${modelId}`, modelId);

  if (ownEntry(config.presets, config.defaultPreset) === undefined) {
    throw new ConfigError(
      source,
      'defaultPreset',
      `unknown preset ${JSON.stringify(config.defaultPreset)} (known: ${knownNames(config.presets)})`,
    );
  }
}

/**
 * Validates a config object (the parsed config file) and merges it over the
 * built-ins: a provider entry is merged field by field over a built-in of the
 * same name, a new provider needs `baseURL`; models and presets are added or
 * replaced by key; defaults are filled in. Cross-references are then checked:
 * every agent's provider exists, `defaultPreset` names a preset, and
 * `minProposers` does not exceed the smallest layer.
 *
 * @param raw - The parsed file; `null` or `undefined` (an empty file) means built-ins only.
 * @param source - Named in error messages, usually the file path.
 * @throws ConfigError naming the offending field.
 */
export function parseMoaConfig(raw: unknown, source = 'config'): MoaConfig {
  const parsed = moaConfigFileSchema.safeParse(raw ?? {}, {
    // Zod's default "expected string, received undefined" hides that the field is simply missing.
    error: (issue) => (issue.code === 'invalid_type' && issue.input === undefined ? 'required' : undefined),
  });
  if (!parsed.success) throw schemaError(source, parsed.error.issues);
  const file = parsed.data;

  const config = builtInConfig();
  for (const [name, entry] of Object.entries(file.providers ?? {})) {
    config.providers[name] = mergeProvider(source, name, entry, ownEntry(config.providers, name));
  }
  for (const [modelId, model] of Object.entries(file.models ?? {})) {
    // Absent rather than undefined, so the resolved config serialises the same way as the built-ins.
    const { contextWindow, ...pricing } = model;
    config.models[modelId] = { ...pricing, ...(contextWindow === undefined ? {} : { contextWindow }) };
  }
  for (const [name, entry] of Object.entries(file.presets ?? {})) {
    config.presets[name] = toPreset(name, entry);
  }
  if (file.defaultPreset !== undefined) config.defaultPreset = file.defaultPreset;
  if (file.webhooks !== undefined) {
    config.webhooks = {
      allowHosts: file.webhooks.allowHosts ?? config.webhooks.allowHosts,
      retryScheduleMs: file.webhooks.retryScheduleMs ?? config.webhooks.retryScheduleMs,
      retryHorizonMs: file.webhooks.retryHorizonMs ?? config.webhooks.retryHorizonMs,
    };
  }

  if (file.quotas !== undefined) config.quotas = { ...config.quotas, ...file.quotas };
  for (const [name, entry] of Object.entries(file.tenants ?? {})) {
    // Defined, not assigned: a tenant name is user text and must never reach a prototype.
    Object.defineProperty(config.tenants, name, { value: { ...entry }, enumerable: true, writable: true });
  }

  crossCheck(source, config);
  return config;
}

/** A Node file-system error's code, when it has one. */
function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined;
  return typeof error.code === 'string' ? error.code : undefined;
}

/** Why a config file could not be read, in words rather than errno codes where they are common. */
function readFailure(error: unknown): string {
  const code = errorCode(error);
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EISDIR') return 'is a directory, not a file';
  if (code === 'EACCES') return 'permission denied';
  return `cannot read the file: ${error instanceof Error ? error.message : String(error)}`;
}

/** Line and column (1-based) of a character offset, for JSON errors that only report a position. */
function lineAndColumn(text: string, position: number): string {
  const before = text.slice(0, position).split('\n');
  return `line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
}

/** Parses JSON, turning a syntax error into a ConfigError with a line number where the engine gives a position. */
function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const position = /at position (\d+)/.exec(message)?.[1];
    // Newer engines already say "(line 3 column 1)"; older ones only give the offset.
    const where =
      position !== undefined && !/line \d+/.test(message)
        ? ` (${lineAndColumn(text, Number(position))})`
        : '';
    throw new ConfigError(source, '', `JSON syntax error: ${message}${where}`, { cause: error });
  }
}

/** Parses YAML, turning a syntax error into a ConfigError; the yaml package puts the line and column in its message. */
function parseYamlText(text: string, source: string): unknown {
  try {
    return parseYaml(text);
  } catch (error) {
    // The first line carries "… at line L, column C"; the rest is a code excerpt, kept on the cause.
    const firstLine = (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
    const message = firstLine.replace(/:$/, '');
    throw new ConfigError(source, '', `YAML syntax error: ${message}`, { cause: error });
  }
}

/**
 * Loads the config: built-ins only without a path, otherwise the file merged
 * over the built-ins (see {@link parseMoaConfig}). `.yaml`/`.yml` files are
 * parsed as YAML and `.json` as JSON; any other name is sniffed (JSON when it
 * starts with `{` or `[`, YAML otherwise).
 *
 * @param path - The config file, typically `MOA_CONFIG`; undefined or empty means none.
 * @throws ConfigError naming the file for a missing or unreadable file, a syntax error or an invalid field.
 */
export function loadMoaConfig(path: string | undefined): MoaConfig {
  // An empty MOA_CONFIG is how shells and compose files spell "unset".
  if (path === undefined || path.trim() === '') return builtInConfig();

  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(path, '', readFailure(error), { cause: error });
  }
  // Editors on Windows may save a byte-order mark, which JSON.parse rejects.
  text = text.replace(/^\uFEFF/, '');

  const extension = extname(path).toLowerCase();
  const isJson =
    extension === '.json' || (extension !== '.yaml' && extension !== '.yml' && /^\s*[{[]/.test(text));
  const raw = isJson ? parseJson(text, path) : parseYamlText(text, path);
  return parseMoaConfig(raw, path);
}

/**
 * The preset a request runs.
 *
 * @param name - The requested preset; undefined selects the config's `defaultPreset`.
 * @returns undefined when there is no preset of that name.
 */
export function resolvePreset(config: MoaConfig, name?: string): PresetConfig | undefined {
  return ownEntry(config.presets, name ?? config.defaultPreset);
}

/** The quotas of a tenant: its own (`tenants.<name>.quotas`) over the defaults (`quotas`). */
export function quotasOf(config: MoaConfig, tenant: string): Quotas {
  // An own property only: a tenant name is user text and must never reach a prototype.
  const own = Object.hasOwn(config.tenants, tenant) ? config.tenants[tenant]?.quotas : undefined;
  return { ...config.quotas, ...own };
}

/**
 * The price of a model.
 *
 * @param modelId - `<provider>/<model>` as in the config's `models` map.
 * @returns undefined when the model has no price (its cost is then reported as null).
 */
export function priceOf(config: MoaConfig, modelId: string): ModelPricing | undefined {
  const model = ownEntry(config.models, modelId);
  return model === undefined
    ? undefined
    : { inputCostPerMTok: model.inputCostPerMTok, outputCostPerMTok: model.outputCostPerMTok };
}

/**
 * The context window of a model, in tokens (prompt and completion together).
 *
 * @param modelId - `<provider>/<model>` as in the config's `models` map.
 * @returns undefined when the config does not know it.
 */
export function contextWindowOf(config: MoaConfig, modelId: string): number | undefined {
  return ownEntry(config.models, modelId)?.contextWindow;
}

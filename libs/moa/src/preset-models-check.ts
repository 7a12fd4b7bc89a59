import { parseModelId } from './model-id.js';
import type { MoaConfig, ProviderConfig } from './types.js';

/*
 * Whether the providers still serve the models of the presets. Providers
 * retire models; a preset naming one fails its calls with 404, and a mixture
 * shrinks. Used by `moa models check` (apps/cli) and by each worker at start
 * (apps/worker), which logs what is missing.
 */

/** One model of the presets, as a provider is asked about it. */
export interface PresetModelCheck {
  /** `<provider>/<model>`, as in the presets. */
  modelId: string;
  /** The id the provider knows it by. */
  providerModel: string;
  /** The presets that use it, sorted. */
  presets: string[];
  /** Whether the provider lists it; null when the provider could not be asked. */
  served: boolean | null;
}

/** What one provider said. */
export interface ProviderCheck {
  provider: string;
  /** The URL asked: `<baseURL>/models`. */
  url: string;
  /**
   * `ok`: the provider answered its list; `no_key`: its key variable is
   * unset, so it was not asked (its calls would fail too); `unreachable`:
   * no answer (connection refused, DNS, timeout); `error`: an HTTP error or
   * an answer that is not a model list.
   */
  status: 'ok' | 'no_key' | 'unreachable' | 'error';
  /** Why, when the status is not `ok`. */
  message?: string;
  /** How many models the provider lists, when it answered. */
  listed?: number;
  models: PresetModelCheck[];
}

/** Options of {@link checkPresetModels}. */
export interface CheckPresetModelsOptions {
  /** Only these presets (default: every preset of the config). */
  presets?: string[];
  /** Where provider keys are read from, by each provider's `apiKeyEnv`. @defaultValue process.env */
  env?: Record<string, string | undefined>;
  fetch?: typeof fetch;
  /** The longest one provider may take to answer. @defaultValue the provider's timeoutMs, at most 30 s */
  timeoutMs?: number;
  /** Aborts every question still open; its providers are then reported `unreachable`. */
  signal?: AbortSignal;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The model ids of a `GET /v1/models` answer: OpenAI's `{object: "list",
 * data: [{id}]}`, or the bare array Together answers.
 */
export function listedModelIds(body: unknown): string[] | undefined {
  const entries = Array.isArray(body)
    ? body
    : isRecord(body) && Array.isArray(body.data)
      ? body.data
      : undefined;
  if (!entries) return undefined;
  return entries.flatMap((entry) => (isRecord(entry) && typeof entry.id === 'string' ? [entry.id] : []));
}

/**
 * Whether a listed set serves a model. Exact ids, plus Ollama's tags: a
 * model asked for without a tag is served by `<model>:latest`.
 */
export function isServed(listed: ReadonlySet<string>, providerModel: string): boolean {
  return listed.has(providerModel) || (!providerModel.includes(':') && listed.has(`${providerModel}:latest`));
}

/** Every provider used by the presets, with the models each preset asks of it. */
function modelsByProvider(config: MoaConfig, presetNames: string[]): Map<string, Map<string, Set<string>>> {
  const byProvider = new Map<string, Map<string, Set<string>>>();
  for (const name of presetNames) {
    const preset = config.presets[name]!;
    for (const agent of [...preset.layers.flat(), preset.aggregator]) {
      const { provider } = parseModelId(agent.model);
      const models = byProvider.get(provider) ?? new Map<string, Set<string>>();
      byProvider.set(provider, models);
      const presets = models.get(agent.model) ?? new Set<string>();
      models.set(agent.model, presets);
      presets.add(name);
    }
  }
  return byProvider;
}

function describeFailure(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return 'no answer in time';
  const cause =
    error instanceof Error ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}

/** Aborts after `timeoutMs`, or with `signal`, whichever comes first. */
function timeoutSignal(timeoutMs: number, signal: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs);
  return signal ? AbortSignal.any([timeout, signal]) : timeout;
}

async function askProvider(
  provider: ProviderConfig,
  models: Map<string, Set<string>>,
  options: CheckPresetModelsOptions,
): Promise<ProviderCheck> {
  const env = options.env ?? process.env;
  const url = `${provider.baseURL.replace(/\/+$/, '')}/models`;
  const checks: PresetModelCheck[] = [...models]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([modelId, presets]) => ({
      modelId,
      providerModel: parseModelId(modelId).model,
      presets: [...presets].sort(),
      served: null,
    }));
  const result = (status: ProviderCheck['status'], message: string): ProviderCheck => ({
    provider: provider.name,
    url,
    status,
    message,
    models: checks,
  });

  const key = provider.apiKeyEnv ? env[provider.apiKeyEnv]?.trim() || undefined : undefined;
  if (provider.apiKeyEnv && !key) return result('no_key', `no API key: ${provider.apiKeyEnv} is not set`);
  let response: Response;
  let text: string;
  try {
    response = await (options.fetch ?? fetch)(url, {
      headers: { accept: 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      signal: timeoutSignal(options.timeoutMs ?? Math.min(provider.timeoutMs, 30_000), options.signal),
    });
    text = await response.text();
  } catch (error) {
    const why = options.signal?.aborted ? 'the check was cancelled' : describeFailure(error);
    return result('unreachable', `cannot reach ${url}: ${why}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const detail =
      isRecord(body) && isRecord(body.error) && typeof body.error.message === 'string'
        ? body.error.message
        : text.slice(0, 200);
    return result('error', `GET ${url}: HTTP ${response.status}${detail ? `: ${detail}` : ''}`);
  }
  const ids = listedModelIds(body);
  if (!ids) return result('error', `GET ${url}: the answer is not a model list: ${text.slice(0, 200)}`);
  const listed = new Set(ids);
  for (const check of checks) check.served = isServed(listed, check.providerModel);
  return { provider: provider.name, url, status: 'ok', listed: ids.length, models: checks };
}

/**
 * Asks every provider that the presets use for its `GET /v1/models`, with
 * its key from the environment (as `moa run --local` calls it), and says,
 * for every preset model, whether the provider serves it. Providers are
 * asked concurrently; one that cannot be asked is reported, not thrown.
 */
export async function checkPresetModels(
  config: MoaConfig,
  options: CheckPresetModelsOptions = {},
): Promise<ProviderCheck[]> {
  const presetNames = options.presets ?? Object.keys(config.presets).sort();
  const byProvider = modelsByProvider(config, presetNames);
  const providers = [...byProvider.keys()].sort();
  return Promise.all(
    providers.map((name) => askProvider(config.providers[name]!, byProvider.get(name)!, options)),
  );
}

/** A preset model its provider answered without: the provider does not serve it. */
export interface MissingPresetModel {
  modelId: string;
  provider: string;
  /** The presets that use it, sorted. */
  presets: string[];
}

/** Every preset model a provider that answered does not list, in provider then model order. */
export function missingPresetModels(checks: readonly ProviderCheck[]): MissingPresetModel[] {
  return checks.flatMap((check) =>
    check.models
      .filter((model) => model.served === false)
      .map((model) => ({ modelId: model.modelId, provider: check.provider, presets: model.presets })),
  );
}

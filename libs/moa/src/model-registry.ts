import type { ChatModel } from './chat-model.js';
import { InvalidRequestError } from './errors/invalid-request-error.js';
import { contextWindowOf, priceOf } from './load-config.js';
import { parseModelId } from './model-id.js';
import { createOpenAICompatibleProvider } from './openai-compatible-provider.js';
import type { ModelPricing, MoaConfig, ProviderConfig } from './types.js';

/** A model id resolved to the adapter that calls it and what we know about it. */
export interface ResolvedModel {
  /** `<provider>/<model>`, as in the preset. */
  modelId: string;
  provider: string;
  /** The id sent to the provider. */
  providerModel: string;
  chatModel: ChatModel;
  /** Undefined when the model has no price: cost is then reported as null. */
  pricing: ModelPricing | undefined;
  /** Tokens of its context window (`contextWindow` in the config); undefined when unknown. */
  contextWindow?: number;
  providerConfig: ProviderConfig;
}

/** Resolves model ids to adapters; one adapter (one HTTP client) per provider. */
export interface ModelRegistry {
  resolve(modelId: string): ResolvedModel;
}

/** Options of {@link createModelRegistry}. */
export interface ModelRegistryOptions {
  /**
   * Where provider keys are read from, by each provider's `apiKeyEnv`.
   * @defaultValue process.env
   */
  env?: Record<string, string | undefined>;
  /** Builds the adapter of a provider; tests pass in-memory models here. */
  createChatModel?: (provider: ProviderConfig, apiKey: string | undefined) => ChatModel;
  /** A custom fetch for the default adapter. */
  fetch?: typeof fetch;
}

/**
 * Builds the registry of every configured provider. A provider whose key
 * variable is unset still resolves: its calls fail with an authentication
 * error, so one missing key never stops the process.
 */
export function createModelRegistry(config: MoaConfig, options: ModelRegistryOptions = {}): ModelRegistry {
  const env = options.env ?? process.env;
  const adapters = new Map<string, ChatModel>();

  function adapterFor(provider: ProviderConfig): ChatModel {
    const existing = adapters.get(provider.name);
    if (existing) return existing;
    const apiKey = provider.apiKeyEnv ? env[provider.apiKeyEnv] || undefined : undefined;
    const adapter = options.createChatModel
      ? options.createChatModel(provider, apiKey)
      : createOpenAICompatibleProvider({
          name: provider.name,
          baseURL: provider.baseURL,
          apiKey,
          missingKeyEnv: provider.apiKeyEnv && !apiKey ? provider.apiKeyEnv : undefined,
          timeoutMs: provider.timeoutMs,
          fetch: options.fetch,
        });
    adapters.set(provider.name, adapter);
    return adapter;
  }

  return {
    resolve(modelId) {
      const { provider, model } = parseModelId(modelId);
      const providerConfig = Object.hasOwn(config.providers, provider)
        ? config.providers[provider]
        : undefined;
      if (!providerConfig) {
        throw new InvalidRequestError(`unknown provider "${provider}" in model "${modelId}"`, {
          code: 'unknown_provider',
        });
      }
      return {
        modelId,
        provider,
        providerModel: model,
        chatModel: adapterFor(providerConfig),
        pricing: priceOf(config, modelId),
        contextWindow: contextWindowOf(config, modelId),
        providerConfig,
      };
    },
  };
}

import {
  checkPresetModels,
  missingPresetModels,
  type CheckPresetModelsOptions,
  type MoaConfig,
  type ProviderCheck,
} from '@moa-queue/moa';
import type { Logger } from 'pino';

/** How long a worker waits for one provider's model list at start. */
export const PRESET_MODELS_CHECK_TIMEOUT_MS = 5000;

/** Options of {@link warnAboutPresetModels}. */
export interface PresetModelsWarningOptions {
  /** Where provider keys are read from. @defaultValue process.env */
  env?: CheckPresetModelsOptions['env'];
  fetch?: typeof fetch;
  /** @defaultValue {@link PRESET_MODELS_CHECK_TIMEOUT_MS} */
  timeoutMs?: number;
  /** Stops the check (the worker is closing); nothing is logged then. */
  signal?: AbortSignal;
}

/** The presets whose models a provider check covers, sorted. */
function presetsOf(check: ProviderCheck): string[] {
  return [...new Set(check.models.flatMap((model) => model.presets))].sort();
}

/**
 * Asks each provider the presets use for its `GET /v1/models` (the check of
 * `moa models check`) and logs what an operator must know: one warning
 * listing every preset model a provider does not serve, and one warning per
 * provider that could not be asked (unreachable, an HTTP error, its key
 * variable unset). All served: one info line. Never throws and never logs
 * once `signal` has aborted; the worker does not wait for it.
 */
export async function warnAboutPresetModels(
  config: MoaConfig,
  logger: Logger,
  options: PresetModelsWarningOptions = {},
): Promise<void> {
  let checks: ProviderCheck[];
  try {
    checks = await checkPresetModels(config, {
      env: options.env,
      fetch: options.fetch,
      timeoutMs: options.timeoutMs ?? PRESET_MODELS_CHECK_TIMEOUT_MS,
      signal: options.signal,
    });
  } catch (error) {
    if (!options.signal?.aborted) logger.warn({ error: String(error) }, 'cannot check preset models');
    return;
  }
  if (options.signal?.aborted) return;

  for (const check of checks) {
    if (check.status === 'ok') continue;
    logger.warn(
      {
        provider: check.provider,
        url: check.url,
        status: check.status,
        reason: check.message,
        presets: presetsOf(check),
        models: check.models.map((model) => model.modelId),
      },
      `cannot check the preset models of provider ${check.provider}: ${check.message ?? check.status}`,
    );
  }
  const missing = missingPresetModels(checks);
  if (missing.length > 0) {
    const list = missing.map((model) => `${model.modelId} (presets: ${model.presets.join(', ')})`).join('; ');
    logger.warn({ missing }, `preset models not served by their provider (calls to them will fail): ${list}`);
  } else if (checks.every((check) => check.status === 'ok')) {
    logger.info(
      {
        providers: checks.map((check) => check.provider),
        models: checks.flatMap((check) => check.models).length,
      },
      'every preset model is served by its provider',
    );
  }
}

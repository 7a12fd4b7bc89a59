import { finishReasonLabel, type MoaConfig } from '@moa-queue/moa';

/** The label value of anything the config does not name. */
export const OTHER_LABEL = 'other';

/**
 * Metric label values, limited to names the operator configured: anything
 * else (a forged job's preset, a model no preset uses) is `other`, so job
 * data can neither add label values without bound nor put its text in a
 * label. Never a job id or user text.
 */
export interface MetricLabels {
  /** The preset name if it is a preset of the config (an own property of `config.presets`), else `other`. */
  preset(name: string): string;
  /** The model id if the config names it (a key of `config.models` or an agent of a configured preset), else `other`. */
  model(modelId: string): string;
  /** The provider name if it is a provider of the config (an own property of `config.providers`), else `other`. */
  provider(name: string): string;
  /**
   * A provider's `finish_reason` as one of a fixed set: `stop`, `length`,
   * `content_filter`, `tool_calls`, `other` (any other text) or `unknown` (none).
   */
  finishReason(reason: string | null | undefined): string;
}

/** The label functions of one config; the sets are built once, so each lookup is one `Set.has`. */
export function metricLabelsFor(config: MoaConfig): MetricLabels {
  const presets = new Set(Object.keys(config.presets));
  const providers = new Set(Object.keys(config.providers));
  const models = new Set(Object.keys(config.models));
  for (const preset of Object.values(config.presets)) {
    for (const agent of [...preset.layers.flat(), preset.aggregator]) models.add(agent.model);
  }
  return {
    preset: (name) => (presets.has(name) ? name : OTHER_LABEL),
    model: (modelId) => (models.has(modelId) ? modelId : OTHER_LABEL),
    provider: (name) => (providers.has(name) ? name : OTHER_LABEL),
    finishReason: finishReasonLabel,
  };
}

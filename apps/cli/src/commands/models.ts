import { checkPresetModels, ConfigError, loadMoaConfig, type MoaConfig } from '@moa-queue/moa';
import { CliError } from '../api.js';

const USAGE = 'usage: moa models check [--preset P[,Q…]]';

function loadConfig(): MoaConfig {
  try {
    return loadMoaConfig(process.env.MOA_CONFIG);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`MOA_CONFIG: ${error.message}`, 2);
    throw error;
  }
}

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`;

/**
 * `moa models check [--preset P]`: a local command, like `moa run --local`.
 * It reads MOA_CONFIG (or the built-ins), asks each provider of the presets
 * for its model list with the provider's key from the environment, and
 * prints, on stdout, each provider's answer and every preset model it does
 * not serve. Exit 0 when every preset model is served; 1 when one is not,
 * or a provider could not be asked (unreachable, an HTTP error, or its key
 * variable unset); 2 for a usage or config error.
 */
export async function modelsCommand(args: string[], options: { preset?: string }): Promise<number> {
  const [action, ...extra] = args;
  if (action !== 'check' || extra.length > 0) throw new CliError(USAGE, 2);
  const config = loadConfig();
  let presets: string[] | undefined;
  if (options.preset !== undefined) {
    presets = options.preset
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean);
    const unknown = presets.filter((name) => !Object.hasOwn(config.presets, name));
    if (presets.length === 0 || unknown.length > 0) {
      throw new CliError(
        `unknown preset ${JSON.stringify(unknown[0] ?? options.preset)}; available: ${Object.keys(config.presets).join(', ')}`,
        2,
      );
    }
  }

  const checks = await checkPresetModels(config, { presets });
  const print = (line: string) => process.stdout.write(`${line}\n`);
  let missing = 0;
  let served = 0;
  let unchecked = 0;
  let failedProviders = 0;
  for (const check of checks) {
    if (check.status === 'ok') {
      const absent = check.models.filter((model) => model.served === false);
      missing += absent.length;
      served += check.models.length - absent.length;
      print(
        `${check.provider}: ${check.url} lists ${plural(check.listed ?? 0, 'model')}; ` +
          `${check.models.length - absent.length} of ${plural(check.models.length, 'preset model')} served`,
      );
      for (const model of absent) {
        print(`  missing: ${model.modelId} (presets: ${model.presets.join(', ')})`);
      }
    } else {
      failedProviders += 1;
      unchecked += check.models.length;
      const presetNames = [...new Set(check.models.flatMap((model) => model.presets))].sort();
      print(
        `${check.provider}: NOT CHECKED: ${check.message} — ${plural(check.models.length, 'preset model')} unchecked (presets: ${presetNames.join(', ')})`,
      );
    }
  }
  const total = served + missing + unchecked;
  if (missing === 0 && failedProviders === 0) {
    print(`ok: all ${plural(total, 'preset model')} served (${plural(checks.length, 'provider')} asked)`);
    return 0;
  }
  const parts: string[] = [];
  if (missing > 0) parts.push(`${plural(missing, 'preset model')} not served`);
  if (failedProviders > 0)
    parts.push(
      `${plural(failedProviders, 'provider')} could not be asked (${plural(unchecked, 'model')} unchecked)`,
    );
  print(`FAILED: ${parts.join('; ')}; ${served} of ${plural(total, 'preset model')} served`);
  return 1;
}

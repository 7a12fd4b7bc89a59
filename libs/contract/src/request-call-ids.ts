import { agentsOfLayer, layerCount, type PresetConfig } from '@moa-queue/moa';
import { callJobId } from './job-ids.js';

/**
 * Every call job id a request may have, whether added yet or not: each
 * agent of each layer, and the aggregator planned again with halved
 * references (replan 1). What a cancel tells the workers to abort.
 */
export function requestCallJobIds(requestId: string, preset: PresetConfig): string[] {
  const ids: string[] = [];
  const lastLayer = layerCount(preset);
  for (let layer = 1; layer <= lastLayer; layer += 1) {
    agentsOfLayer(preset, layer).forEach((_agent, index) => ids.push(callJobId(requestId, layer, index)));
  }
  ids.push(callJobId(requestId, lastLayer, 0, 1));
  return ids;
}

import { ProviderError } from './provider-error.js';

/**
 * A call still running when its layer's straggler deadline (`layerTimeoutMs`)
 * passed: abandoned so the layer can proceed with the calls that finished.
 */
export class LayerDeadlineError extends ProviderError {
  override readonly name = 'LayerDeadlineError';
  readonly type = 'timeout_error' as const;
  readonly retryable = false;

  constructor(layerTimeoutMs: number) {
    super(`abandoned at the layer deadline (layerTimeoutMs ${layerTimeoutMs})`, { code: 'layer_deadline' });
  }
}

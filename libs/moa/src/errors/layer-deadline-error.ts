import { ProviderError } from './provider-error.js';

/**
 * A call still running when its layer's straggler deadline (`layerTimeoutMs`)
 * passed: abandoned so the layer can proceed with the calls that finished.
 */
export class LayerDeadlineError extends ProviderError {
  override readonly name = 'LayerDeadlineError';
  readonly type = 'timeout_error' as const;
  readonly retryable = false;

  /** @param layerTimeoutMs the deadline, when the one who stops the call knows it */
  constructor(layerTimeoutMs?: number) {
    super(
      layerTimeoutMs === undefined
        ? 'abandoned at the layer deadline'
        : `abandoned at the layer deadline (layerTimeoutMs ${layerTimeoutMs})`,
      { code: 'layer_deadline' },
    );
  }
}

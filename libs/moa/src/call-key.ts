/** What names one planned call of a request: its layer, its agent, and which run of the layer it belongs to. */
export interface CallIdentity {
  /** 1-based layer number. */
  layer: number;
  /** The agent's index in its layer. */
  agentIndex: number;
  /**
   * 0 for a layer's first run; 1 for an aggregator run again with halved
   * references after exceeding its model's context. @defaultValue 0
   */
  round?: number;
}

/**
 * The key of a call within its request, `L<layer>-A<agent>` and `-R<round>`
 * after a first round: distinct for every call the request can ever make, so
 * a finished call is recognised and never planned again. A call job's id is
 * the request id, a dash and this key.
 */
export function callKey(call: CallIdentity): string {
  const round = call.round ?? 0;
  return `L${call.layer}-A${call.agentIndex}${round > 0 ? `-R${round}` : ''}`;
}

/** Progress of a MoA request, emitted in order by both runners. */
export type MoaEvent =
  | { type: 'layer_started'; layer: number; role: 'proposer' | 'aggregator'; calls: number }
  | {
      type: 'layer_finished';
      layer: number;
      role: 'proposer' | 'aggregator';
      durationMs: number;
      succeeded: number;
      failed: number;
    }
  | { type: 'done'; status: 'completed' | 'failed' | 'cancelled' };

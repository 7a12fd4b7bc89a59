/** Redis key whose presence marks a request as cancelled. */
export function cancelKey(prefix: string, requestId: string): string {
  return `${prefix}:moa-cancel:${requestId}`;
}

/** The cancel marker outlives the request's retention, so a late worker still sees it. */
export const CANCEL_MARKER_TTL_SECONDS = 8 * 24 * 3600;

/** Redis key whose presence says a layer's straggler deadline has passed. */
export function deadlineKey(prefix: string, requestId: string, layer: number): string {
  return `${prefix}:moa-deadline:${requestId}:L${layer}`;
}

/**
 * Pub/sub channel naming call jobs to abort wherever they run: every worker
 * process listens and aborts the ones it holds (a cancel, or a deadline).
 */
export function cancelCallsChannel(prefix: string): string {
  return `${prefix}:moa-cancel-calls`;
}

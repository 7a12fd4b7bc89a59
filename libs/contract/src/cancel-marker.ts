/** Redis key whose presence marks a request as cancelled. */
export function cancelKey(prefix: string, requestId: string): string {
  return `${prefix}:moa-cancel:${requestId}`;
}

/** The cancel marker outlives the request's retention, so a late worker still sees it. */
export const CANCEL_MARKER_TTL_SECONDS = 8 * 24 * 3600;

import type { ErrorRecord } from '@moa-queue/moa';
import type { JobView } from './job-view.js';

/*
 * Whether running a failed MoA request again can help: what a chat
 * completion's error answer says in `x-should-retry`, so that a client's
 * automatic retries (the openai SDKs retry 5xx twice by default) never pay
 * again for a failure that would happen again.
 */

/** Call error types a later run may not meet: the provider was busy, slow, down or unreachable. */
const TRANSIENT_CALL_ERRORS: ReadonlySet<string> = new Set([
  'server_error',
  'timeout_error',
  'connection_error',
  'rate_limit_error',
  'conflict_error',
]);

/** Request error codes that a run of the same request meets again. */
const DETERMINISTIC_CODES: ReadonlySet<string> = new Set([
  'cost_cap_exceeded',
  'context_length_exceeded',
  'invalid_request',
  'invalid_value',
  'unsupported_parameter',
]);

/** Whether a failed call may succeed when made again. */
function callMayRecover(error: ErrorRecord | null): boolean {
  if (!error) return true; // no record of why: it was not a refusal
  if (error.code === 'context_length_exceeded') return false;
  return TRANSIENT_CALL_ERRORS.has(error.type);
}

/**
 * Whether the same request, sent again, may succeed where this run failed.
 *
 * - `too_few_proposers`: only if one of the failed proposers of the failing
 *   layer failed transiently (a provider's 5xx or timeouts after every
 *   attempt, a layer deadline); proposers refused with a 4xx (a bad request,
 *   an unknown model, a missing key) fail the same way every time.
 * - `aggregator_failed`: likewise, by the aggregator call's own error.
 * - `cost_cap_exceeded`, `context_length_exceeded`, validation: never.
 * - Anything else (a crash, an unknown cause): yes, as a 5xx would say.
 */
export function failureMayRecover(view: Pick<JobView, 'error' | 'layers'>): boolean {
  const code = view.error?.code ?? null;
  if (code !== null && DETERMINISTIC_CODES.has(code)) return false;
  const last = view.layers.at(-1);
  if (code === 'too_few_proposers' || code === 'aggregator_failed') {
    const failed = (last?.calls ?? []).filter((call) => call.status === 'failed');
    if (failed.length === 0) return true;
    return failed.some((call) => callMayRecover(call.error));
  }
  return true;
}

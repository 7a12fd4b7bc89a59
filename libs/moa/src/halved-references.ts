import { failedForContextLength } from './errors/context-length-exceeded.js';
import type { PlannedCall } from './moa-plan.js';
import type { CallRecord } from './types.js';

/** The share of the references' budget an aggregator call is planned again with after a context-length refusal. */
export const HALVED_REFERENCE_SHARE = 0.5;

/**
 * Whether an aggregator call should be planned again, once, with its
 * references halved ({@link HALVED_REFERENCE_SHARE}): its provider refused
 * the prompt for context length (its window is smaller than configured, or
 * its tokenizer counts more than ours, beyond the margin), the call had
 * references to halve, and they were not halved already. A call that was
 * never sent (our own measure refused it) is not: its references are
 * already cut to nothing.
 */
export function needsHalvedReferences(
  planned: PlannedCall,
  record: CallRecord,
  referenceCount: number,
): boolean {
  return (
    planned.notSent === undefined &&
    referenceCount > 0 &&
    (planned.contextFit.referenceShare ?? 1) > HALVED_REFERENCE_SHARE &&
    failedForContextLength(record)
  );
}

/**
 * The record of an aggregator call made again with halved references: the
 * second call's, its attempts counting the refused call's too (a refusal
 * used no tokens, so it costs nothing).
 */
export function recordAfterHalvedReferences(refused: CallRecord, retried: CallRecord): CallRecord {
  return { ...retried, attempts: refused.attempts + retried.attempts };
}

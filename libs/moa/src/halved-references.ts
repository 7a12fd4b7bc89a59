import { failedForContextLength } from './errors/context-length-exceeded.js';
import type { CallRecord } from './types.js';

/** The share of the references' budget an aggregator is planned again with after a context-length refusal. */
export const HALVED_REFERENCE_SHARE = 0.5;

/**
 * Whether a failed aggregator call is worth running once more with its
 * references halved ({@link HALVED_REFERENCE_SHARE}; the decider runs it at
 * most once): its provider refused the prompt for context length (its window
 * is smaller than configured, or its tokenizer counts more than ours, beyond
 * the margin) and it had references to halve. A call that was never sent
 * (our own measure refused it, `attempts: 0`) is not: its references were
 * already cut to nothing.
 */
export function needsHalvedReferences(record: CallRecord, referenceCount: number): boolean {
  return record.attempts > 0 && referenceCount > 0 && failedForContextLength(record);
}

/**
 * The aggregator's record after its round with halved references, which
 * replaces the refused round in the job object: the new call's, its
 * attempts counting the refused call's too (a refusal used no tokens, so it
 * adds no cost), so the refusal stays visible.
 */
export function recordAfterHalvedReferences(
  refused: CallRecord | undefined,
  retried: CallRecord,
): CallRecord {
  return refused ? { ...retried, attempts: refused.attempts + retried.attempts } : retried;
}

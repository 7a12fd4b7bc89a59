import type { KeepJobs } from 'bullmq';

/**
 * How long finished requests stay readable through `GET /v1/jobs/{id}`:
 * 7 days, at most 100,000 of each outcome. Bounded so Redis memory is too.
 */
export const REQUEST_RETENTION: KeepJobs = { age: 7 * 24 * 3600, count: 100_000 };

/**
 * Finished call jobs are kept an hour: long enough that a re-added id is
 * still recognised as a duplicate (never run twice), while the parent keeps
 * each result in its own dependency records.
 */
export const CALL_RETENTION_COMPLETED: KeepJobs = { age: 3600 };

/** Failed call jobs are kept a day for inspection; the parent copies what it needs. */
export const CALL_RETENTION_FAILED: KeepJobs = { age: 24 * 3600 };

import type { KeepJobs } from 'bullmq';

/**
 * How long finished requests stay readable through `GET /v1/jobs/{id}`:
 * 7 days, at most 100,000 of each outcome. Bounded so Redis memory is too.
 */
export const REQUEST_RETENTION: KeepJobs = { age: 7 * 24 * 3600, count: 100_000 };

/**
 * Finished call jobs are kept 10 minutes. The orchestrator never re-adds a
 * call whose result its request already holds; the retention only has to
 * cover the moment between reading those results and adding the layer, when
 * a just-finished call must still be recognised as a duplicate.
 */
export const CALL_RETENTION_COMPLETED: KeepJobs = { age: 600 };

/** Failed call jobs are kept a day for inspection; the parent copies what it needs. */
export const CALL_RETENTION_FAILED: KeepJobs = { age: 24 * 3600 };

/**
 * How long a batch item's request stays readable (`GET /v1/jobs/{id}`)
 * once its output or error line is in the batch: 10 minutes by default
 * (the worker's `BATCH_ITEM_GRACE_MS`). Its answer lives on in the batch's
 * output file, so the request job, its calls and its keys are removed then
 * (batch-item-sweeper.ts in the worker). Batch items otherwise keep the
 * request queue's own retention: BullMQ trims a queue's whole finished set
 * by the retention of whichever job finishes, so a shorter one on items
 * would trim interactive requests too.
 */
export const DEFAULT_BATCH_ITEM_GRACE_MS = 10 * 60 * 1000;

import type { KeepJobs } from 'bullmq';

/**
 * How long finished requests stay readable through `GET /v1/jobs/{id}`:
 * 7 days, at most 100,000 of each outcome. Bounded so Redis memory is too.
 */
export const REQUEST_RETENTION: KeepJobs = { age: 7 * 24 * 3600, count: 100_000 };

/**
 * A call job goes as soon as it completes: BullMQ has by then copied its
 * record into its request's job (the `:processed` hash), which is all the
 * request needs, and the request keeps it in its layers once the layer
 * closes. A kept job would be one more copy of the answer while it stayed.
 * Nothing is paid for twice without it: a call added again under the same
 * id (an orchestrator re-run after a stall, between reading its request's
 * results and adding the layer) finds its record in that hash and returns it
 * without calling the provider (call-prompt.ts in the worker).
 */
export const CALL_RETENTION_COMPLETED = true;

/** Failed call jobs are kept a day for inspection; the parent copies what it needs. */
export const CALL_RETENTION_FAILED: KeepJobs = { age: 24 * 3600 };

/**
 * How long a batch item's request stays readable (`GET /v1/jobs/{id}`)
 * once its output or error line is in the batch: 30 seconds by default (the
 * worker's `BATCH_ITEM_GRACE_MS`), then it goes within the 10 s between
 * sweeps. Its answer lives on in the batch's
 * output file, so the request job, its calls and its keys are removed then
 * (batch-item-sweeper.ts in the worker). Short, because everything a
 * finished item keeps is a second copy of its line: with 400-word answers
 * about 16 KB an item, and a batch running at 100 items a second kept
 * 60,000 of them (1 GB) under the 10 minutes first chosen, and a
 * dataset-sized batch must fit a modest Redis. Batch items
 * otherwise keep the request queue's own retention: BullMQ trims a queue's
 * whole finished set by the retention of whichever job finishes, so a
 * shorter one on items would trim interactive requests too.
 */
export const DEFAULT_BATCH_ITEM_GRACE_MS = 30 * 1000;

/**
 * Bound of each queue's BullMQ events stream (BullMQ's default: 10,000
 * entries). Nothing of MoA Queue reads those streams (a request is followed
 * through its own, request-events.ts); they stay for an operator's
 * `QueueEvents` listener to catch up after a short disconnection. A finished
 * call's event carries its whole record, answer included, so the default
 * kept about 7 MB per LLM queue at 400-word answers for nobody.
 */
export const QUEUE_EVENTS_MAX_LENGTH = 1000;

import {
  BATCH_COMPLETION_WINDOW_MS,
  BATCH_LIMITS,
  type FileStore,
  type MoaQueues,
} from '@moa-queue/contract';
import type { MoaConfig } from '@moa-queue/moa';
import type { Redis } from 'ioredis';

/** Limits of the Files and Batch API; tests lower them. */
export interface BatchApiOptions {
  /** @defaultValue 200 MB */
  maxFileBytes: number;
  /** Requests per batch. @defaultValue 50000 */
  maxLines: number;
  /** How long a batch may run before it expires. @defaultValue 24 h */
  completionWindowMs: number;
}

/** The defaults of DESIGN §4. */
export const DEFAULT_BATCH_OPTIONS: BatchApiOptions = {
  maxFileBytes: BATCH_LIMITS.maxFileBytes,
  maxLines: BATCH_LIMITS.maxLines,
  completionWindowMs: BATCH_COMPLETION_WINDOW_MS,
};

/** What the files and batches routes need. */
export interface BatchRouteDependencies {
  queues: MoaQueues;
  redis: Redis;
  /** Where files' content is (their metadata is in Redis). */
  files: FileStore;
  config: MoaConfig;
  options: BatchApiOptions;
  /** A batch line is a request body: it has the JSON body limit. */
  maxLineBytes: number;
}

import {
  batchKey,
  fileKey,
  TERMINAL_BATCH_STATUSES,
  type FileStore,
  type FileSweepReport,
} from '@moa-queue/contract';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** What the file sweep needs. */
export interface FileSweepDependencies {
  redis: Redis;
  /** The queue prefix. */
  prefix: string;
  files: FileStore;
  logger: Logger;
  /** How often one worker of the cluster sweeps. @defaultValue 3600000 (an hour) */
  intervalMs?: number;
}

/** The key that lets one sweep run per interval across all workers. */
export const fileSweepKey = (prefix: string): string => `${prefix}:moa-files:sweep`;

/**
 * The periodic clean-up of the file store (`FileStore.sweep`): a directory
 * keeps files for ever unless told, while Redis expires their metadata after
 * the retention, so content whose metadata is gone is deleted, and so are
 * abandoned writes and the spools of batches that ended. Runs at most once
 * per interval across the cluster (a key claimed with `SET NX PX`), from the
 * reconciler's job; nothing at all with the Redis store.
 */
export function createFileSweep(dependencies: FileSweepDependencies) {
  const { redis, prefix, files, logger } = dependencies;
  const intervalMs = dependencies.intervalMs ?? 3600_000;

  async function haveMetadata(fileIds: readonly string[]): Promise<boolean[]> {
    const pipeline = redis.pipeline();
    for (const fileId of fileIds) pipeline.exists(fileKey(prefix, fileId));
    const replies = (await pipeline.exec()) ?? [];
    return fileIds.map((_fileId, index) => {
      const [error, exists] = replies[index] ?? [];
      if (error) throw error;
      return exists === 1;
    });
  }

  async function areRunning(batchIds: readonly string[]): Promise<boolean[]> {
    const pipeline = redis.pipeline();
    for (const batchId of batchIds) pipeline.hget(batchKey(prefix, batchId), 'status');
    const replies = (await pipeline.exec()) ?? [];
    return batchIds.map((_batchId, index) => {
      const [error, status] = replies[index] ?? [];
      if (error) throw error;
      return typeof status === 'string' && !TERMINAL_BATCH_STATUSES.has(status);
    });
  }

  /** Sweeps if no worker has in the last interval; the report, or undefined when it did not run. */
  return async function sweepFiles(now = Date.now()): Promise<FileSweepReport | undefined> {
    if (files.kind === 'redis') return undefined;
    if ((await redis.set(fileSweepKey(prefix), String(now), 'PX', intervalMs, 'NX')) !== 'OK')
      return undefined;
    const report = await files.sweep({ haveMetadata, areRunning, now });
    if (report.files + report.partials + report.spools > 0) logger.info(report, 'file store swept');
    return report;
  };
}

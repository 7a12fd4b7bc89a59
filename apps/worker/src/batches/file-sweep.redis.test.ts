import { mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  batchKey,
  DirectoryFileStore,
  RedisFileStore,
  saveStoredFile,
  type FileStore,
} from '@moa-queue/contract';
import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createFileSweep, fileSweepKey } from './file-sweep.js';

const logger = pino({ level: 'silent' });
const HOUR = 3600_000;

describe('the file store sweep', () => {
  let redis: Redis;
  const prefix = uniquePrefix('file-sweep');
  const directory = mkdtempSync(join(tmpdir(), 'moa-file-sweep-'));
  const files = new DirectoryFileStore({ directory });

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.unlink(...keys);
    redis.disconnect();
    rmSync(directory, { recursive: true, force: true });
  });

  /** Makes a path look last changed `ageMs` ago. */
  const age = (path: string, ageMs: number) => {
    const then = new Date(Date.now() - ageMs);
    utimesSync(path, then, then);
  };
  async function commit(store: FileStore, fileId: string): Promise<void> {
    const writer = await store.create(fileId);
    await writer.write(Buffer.from(`${fileId}\n`));
    await writer.commit();
  }

  it('deletes content without metadata, abandoned writes and the spools of ended batches, nothing else', async () => {
    const filesDirectory = join(directory, 'files');
    const spoolDirectory = join(directory, 'spool');
    // A file with its metadata, and two without: one old (its metadata expired), one just committed.
    for (const fileId of ['file-kept', 'file-expired', 'file-fresh']) await commit(files, fileId);
    await saveStoredFile(redis, prefix, {
      id: 'file-kept',
      tenant: 'default',
      bytes: 10,
      createdAt: Math.floor(Date.now() / 1000),
      filename: 'kept.jsonl',
      purpose: 'batch',
      lines: 1,
      utf8: true,
    });
    age(join(filesDirectory, 'file-kept'), 40 * 24 * HOUR);
    age(join(filesDirectory, 'file-expired'), 40 * 24 * HOUR);
    // Writes never committed: one given up two days ago, one still going.
    for (const fileId of ['file-abandoned', 'file-uploading']) {
      const writer = await files.create(fileId);
      await writer.write(Buffer.from('partial'));
    }
    const partial = (fileId: string) =>
      readdirSync(filesDirectory).find((name) => name.startsWith(`.${fileId}.`))!;
    age(join(filesDirectory, partial('file-abandoned')), 48 * HOUR);
    // Spools: a running batch's, a completed batch's, a batch Redis no longer has, and a new one.
    await redis.hset(batchKey(prefix, 'batch_running'), 'status', 'in_progress');
    await redis.hset(batchKey(prefix, 'batch_done'), 'status', 'completed');
    for (const batchId of ['batch_running', 'batch_done', 'batch_gone', 'batch_new']) {
      await files.spoolLine(batchId, 'batch_req_a', '{"custom_id":"a"}');
      if (batchId !== 'batch_new') age(join(spoolDirectory, batchId), 2 * HOUR);
    }

    const sweep = createFileSweep({ redis, prefix, files, logger });
    expect(await sweep()).toEqual({ files: 1, partials: 1, spools: 2 });
    expect(
      readdirSync(filesDirectory)
        .filter((name) => !name.startsWith('.'))
        .sort(),
    ).toEqual(['file-fresh', 'file-kept']);
    expect(readdirSync(filesDirectory).filter((name) => name.startsWith('.'))).toEqual([
      partial('file-uploading'),
    ]);
    expect(readdirSync(spoolDirectory).sort()).toEqual(['batch_new', 'batch_running']);

    // Once per interval across the cluster: another worker's sweep right after does nothing.
    age(join(filesDirectory, 'file-fresh'), 40 * 24 * HOUR);
    expect(await createFileSweep({ redis, prefix, files, logger })()).toBeUndefined();
    expect(readdirSync(filesDirectory)).toContain('file-fresh');
    await redis.del(fileSweepKey(prefix));
    expect(await sweep()).toEqual({ files: 1, partials: 0, spools: 0 });
  });

  it('has nothing to do with files in Redis, which expires them itself', async () => {
    const store = new RedisFileStore({ redis, prefix: `${prefix}-redis` });
    expect(
      await createFileSweep({ redis, prefix: `${prefix}-redis`, files: store, logger })(),
    ).toBeUndefined();
    expect(await redis.exists(fileSweepKey(`${prefix}-redis`))).toBe(0);
  });
});

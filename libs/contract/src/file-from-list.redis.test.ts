import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { listToFile } from './batch-files.js';
import { fileChunksKey } from './batch-keys.js';
import { RedisFileStore } from './redis-file-store.js';

const CHUNK_BYTES = 100;

/** Lines like a batch's output lines (JSON objects), of sizes around and across the chunk size. */
function lines(count: number): string[] {
  return Array.from({ length: count }, (_, index) =>
    JSON.stringify({ id: `line-${index}`, text: 'x'.repeat((index * 37) % 230) }),
  );
}

async function readAll(files: RedisFileStore, fileId: string, start?: number): Promise<string> {
  const pieces: Buffer[] = [];
  for await (const data of files.read(fileId, start === undefined ? {} : { start })) pieces.push(data);
  return Buffer.concat(pieces).toString();
}

/*
 * In the Redis store a batch's lines wait in its list until finalization;
 * making the file moves them into it, so a 764 MB output is never held twice.
 */
describe("the Redis store's file of a batch's list", () => {
  let redis: Redis;
  let files: RedisFileStore;
  const prefix = uniquePrefix('file-from-list');
  const batchId = 'batch_FromList1';
  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
    files = new RedisFileStore({ redis, prefix, chunkBytes: CHUNK_BYTES });
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });

  it('moves every line into fixed-size chunks, in order, and empties the list', async () => {
    const list = `${prefix}:list-a`;
    const written = lines(450);
    await redis.rpush(list, ...written);
    const made = await listToFile(redis, files, list, batchId, 'file-fromlista');
    const expected = written.map((line) => `${line}\n`).join('');
    expect(made).toEqual({ bytes: Buffer.byteLength(expected), lines: 450 });
    expect(await readAll(files, 'file-fromlista')).toBe(expected);
    // Every chunk but the last is exactly the chunk size, so a read from any byte works.
    const chunks = await redis.lrangeBuffer(fileChunksKey(prefix, 'file-fromlista'), 0, -1);
    expect(chunks.slice(0, -1).every((chunk) => chunk.length === CHUNK_BYTES)).toBe(true);
    expect(await readAll(files, 'file-fromlista', 1234)).toBe(expected.slice(1234));
    expect(await redis.exists(list)).toBe(0);
    expect(await files.size('file-fromlista')).toBe(Buffer.byteLength(expected));
  });

  it('is finished by a later run when one dies midway, and gives the same answer when run again', async () => {
    const list = `${prefix}:list-b`;
    const written = lines(700);
    await redis.rpush(list, ...written);
    // What a run that died after its first step leaves: the step's script, run as the store runs it.
    const partial = `${fileChunksKey(prefix, 'file-fromlistb')}:partial:list`;
    const script = readFileSync(fileURLToPath(new URL('../lua/list-to-chunks.lua', import.meta.url)), 'utf8');
    expect(await redis.eval(script, 3, list, partial, `${partial}:counts`, CHUNK_BYTES, 200, 3600)).toBe(200);
    expect(await redis.llen(list)).toBe(500);
    // Nothing reads as the file yet.
    expect(await files.size('file-fromlistb')).toBeUndefined();

    const expected = written.map((line) => `${line}\n`).join('');
    const made = await listToFile(redis, files, list, batchId, 'file-fromlistb');
    expect(made).toEqual({ bytes: Buffer.byteLength(expected), lines: 700 });
    expect(await readAll(files, 'file-fromlistb')).toBe(expected);
    // Retried after the rename (the metadata not yet saved): the same file, the same counts.
    expect(await listToFile(redis, files, list, batchId, 'file-fromlistb')).toEqual(made);
    expect(await readAll(files, 'file-fromlistb')).toBe(expected);
  });

  it('makes no file of an empty list', async () => {
    expect(await listToFile(redis, files, `${prefix}:list-none`, batchId, 'file-fromlistc')).toBeUndefined();
    expect(await files.size('file-fromlistc')).toBeUndefined();
  });

  it('refuses a line spooled to a directory, naming MOA_FILES_DIR, and moves nothing', async () => {
    const list = `${prefix}:list-d`;
    await redis.rpush(list, lines(1)[0]!, 'dir:line-1');
    await expect(listToFile(redis, files, list, batchId, 'file-fromlistd')).rejects.toMatchObject({
      name: 'FileStoreError',
      code: 'spool_missing',
      message: expect.stringContaining('MOA_FILES_DIR'),
    });
    expect(await redis.llen(list)).toBe(2);
  });
});

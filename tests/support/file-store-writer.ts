/**
 * A child process for the file stores' crash test (libs/contract/src/file-store.redis.test.ts):
 * writes file `FILE_ID` to the store of `STORE` (`redis` or `directory`) in 256 KiB pieces, says
 * `written <bytes>` after each, and never commits: the test kills it with SIGKILL midway.
 */
import { DirectoryFileStore, RedisFileStore, type FileStore } from '@moa-queue/contract';
import { Redis } from 'ioredis';

const { STORE, REDIS_URL, PREFIX, DIRECTORY, FILE_ID } = process.env;
const redis = STORE === 'redis' ? new Redis(REDIS_URL!) : undefined;
const files: FileStore = redis
  ? new RedisFileStore({ redis, prefix: PREFIX! })
  : new DirectoryFileStore({ directory: DIRECTORY! });
const writer = await files.create(FILE_ID!);
const piece = Buffer.alloc(256 * 1024, 'x');
for (;;) {
  await writer.write(piece);
  console.log(`written ${writer.bytes}`);
  // Slow enough that the test kills it mid-file, not after some fixed amount.
  await new Promise((resolve) => setTimeout(resolve, 20));
}

import type { Redis } from 'ioredis';
import { DirectoryFileStore } from './directory-file-store.js';
import type { FileStore } from './file-store.js';
import { RedisFileStore } from './redis-file-store.js';

/** Options of {@link createFileStore}. */
export interface FileStoreOptions {
  /** Commands connection (the Redis store keeps content there; both keep metadata there). */
  redis: Redis;
  /** The queue prefix. */
  prefix: string;
  /**
   * `MOA_FILES_DIR`: file content goes to this directory, Redis keeps only
   * metadata. Unset: content stays in Redis.
   * @defaultValue undefined (the Redis store)
   */
  directory?: string | undefined;
}

/** The file store a process uses: a directory when `MOA_FILES_DIR` is set, else Redis. */
export function createFileStore(options: FileStoreOptions): FileStore {
  return options.directory
    ? new DirectoryFileStore({ directory: options.directory })
    : new RedisFileStore({ redis: options.redis, prefix: options.prefix });
}

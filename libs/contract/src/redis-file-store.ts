import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import { BATCH_RETENTION_SECONDS, FILE_CHUNK_BYTES, fileChunksKey } from './batch-keys.js';
import { checkedBatchId, checkedFileId, checkedLineId } from './file-id.js';
import { FileStoreError } from './file-store-error.js';
import {
  isInlineEntry,
  type FileFromList,
  type FileReadOptions,
  type FileStore,
  type FileSweepReport,
  type FileWriter,
} from './file-store.js';

/** Options of {@link RedisFileStore}. */
export interface RedisFileStoreOptions {
  redis: Redis;
  /** The queue prefix: keys are `<prefix>:moa-file:<id>:chunks`. */
  prefix: string;
  /** Bytes per chunk; every chunk but the last has exactly this many. @defaultValue 262144 (256 KiB) */
  chunkBytes?: number;
  /** How long committed content is kept (its metadata has the same retention). @defaultValue 30 days */
  retentionSeconds?: number;
}

/** How long the chunks of an unfinished write are kept: far longer than any upload may take. */
const PARTIAL_TTL_SECONDS = 24 * 3600;

/** Chunks read per round trip. */
const CHUNKS_PER_READ = 4;

/** Lines moved from a batch's list into its file per step (`lua/list-to-chunks.lua`): about 3 MB at 15 KB a line. */
const LINES_PER_STEP = 200;

const LIST_TO_CHUNKS = readFileSync(
  fileURLToPath(new URL('../lua/list-to-chunks.lua', import.meta.url)),
  'utf8',
);
const LIST_TO_CHUNKS_COMMAND = 'moaListToChunks';

type WithListToChunks = Redis & {
  [LIST_TO_CHUNKS_COMMAND](
    listKey: string,
    partialKey: string,
    countsKey: string,
    chunkBytes: number,
    linesPerStep: number,
    ttlSeconds: number,
  ): Promise<number>;
};

/**
 * Files in Redis, as they have always been stored: a list of chunks per file
 * (`<prefix>:moa-file:<id>:chunks`), every chunk but the last exactly
 * `chunkBytes` long, so a byte offset is a chunk number and an offset in it.
 * A write goes to a key of its own (expiring in a day if never committed)
 * that `commit` renames onto the file's key in one command, so readers see
 * the old content or the new one, never part of it. An empty file is one
 * empty chunk (a missing key is a file that was never committed); batches'
 * lines stay in their Redis lists until finalization, as before.
 */
export class RedisFileStore implements FileStore {
  readonly kind = 'redis';

  /** Redis is checked by the process's readiness: nothing of its own to check. */
  async check(): Promise<void> {}
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly chunkBytes: number;
  private readonly retentionSeconds: number;

  constructor(options: RedisFileStoreOptions) {
    if (!(LIST_TO_CHUNKS_COMMAND in options.redis)) {
      options.redis.defineCommand(LIST_TO_CHUNKS_COMMAND, { numberOfKeys: 3, lua: LIST_TO_CHUNKS });
    }
    this.redis = options.redis;
    this.prefix = options.prefix;
    this.chunkBytes = options.chunkBytes ?? FILE_CHUNK_BYTES;
    this.retentionSeconds = options.retentionSeconds ?? BATCH_RETENTION_SECONDS;
  }

  private key(fileId: string): string {
    return fileChunksKey(this.prefix, checkedFileId(fileId));
  }

  async create(fileId: string): Promise<FileWriter> {
    const key = this.key(fileId);
    const partial = `${key}:partial:${randomBytes(8).toString('hex')}`;
    const { redis, chunkBytes, retentionSeconds } = this;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let bytes = 0;
    let ended = false;
    const push = async (chunk: Buffer) => {
      await redis.multi().rpush(partial, chunk).expire(partial, PARTIAL_TTL_SECONDS).exec();
    };
    return {
      get bytes() {
        return bytes;
      },
      async write(data) {
        if (ended) throw new Error(`file ${fileId}: write after commit or abort`);
        bytes += data.length;
        pending.push(data);
        pendingBytes += data.length;
        // Holds at most one chunk: a chunk is sent, and awaited, as soon as it is full.
        while (pendingBytes >= chunkBytes) {
          const all = Buffer.concat(pending);
          await push(all.subarray(0, chunkBytes));
          const rest = all.subarray(chunkBytes);
          pending = rest.length > 0 ? [Buffer.from(rest)] : [];
          pendingBytes = rest.length;
        }
      },
      async commit() {
        if (ended) throw new Error(`file ${fileId}: commit after commit or abort`);
        ended = true;
        // The last chunk, possibly empty: a committed file always has one.
        if (pendingBytes > 0 || bytes === 0) await push(Buffer.concat(pending));
        pending = [];
        await redis.multi().rename(partial, key).expire(key, retentionSeconds).exec();
        return bytes;
      },
      async abort() {
        ended = true;
        pending = [];
        await redis.del(partial);
      },
    };
  }

  /**
   * Makes a file of a batch's output or error list (its lines, each followed
   * by a newline), moving the lines out of the list into the file's chunks a
   * few hundred at a time with `lua/list-to-chunks.lua`: each step is one
   * script, so no line is ever in both places, and a 764 MB output is never
   * held twice (a copy kept the list until the file was whole). The partial
   * chunks and their counts have fixed keys, so a run that dies midway is
   * finished by the next one, which goes on from the list's head; the file
   * is renamed into place only once the list is empty, so it never reads as
   * complete before it is. Once made, the counts are kept a day, so a run
   * retried after the rename gets the same answer.
   *
   * @returns the file's size and lines, or undefined when the list is empty
   * and no run made the file.
   * @throws FileStoreError `spool_missing` when the list holds a line spooled
   * to a directory (processes disagree on MOA_FILES_DIR).
   */
  async fileFromList(listKey: string, batchId: string, fileId: string): Promise<FileFromList | undefined> {
    checkedBatchId(batchId);
    const key = this.key(fileId);
    const partial = `${key}:partial:list`;
    const counts = `${partial}:counts`;
    const redis = this.redis as WithListToChunks;
    for (;;) {
      let moved: number;
      try {
        moved = await redis[LIST_TO_CHUNKS_COMMAND](
          listKey,
          partial,
          counts,
          this.chunkBytes,
          LINES_PER_STEP,
          PARTIAL_TTL_SECONDS,
        );
      } catch (error) {
        if (error instanceof Error && error.message.includes('spool_missing')) {
          throw spoolMissing(batchId);
        }
        throw error;
      }
      if (moved === 0) break;
    }
    const [bytes, lines] = await this.redis.hmget(counts, 'bytes', 'lines');
    if (bytes === null || lines === null) return undefined;
    // Whole now: renamed into place (a run retried after the rename finds no partial).
    if ((await this.redis.exists(partial)) === 1) {
      await this.redis.multi().rename(partial, key).expire(key, this.retentionSeconds).exec();
    }
    return { bytes: Number(bytes), lines: Number(lines) };
  }

  async *read(fileId: string, options: FileReadOptions = {}): AsyncGenerator<Buffer> {
    const key = this.key(fileId);
    const start = options.start ?? 0;
    let chunk = Math.floor(start / this.chunkBytes);
    let skip = start - chunk * this.chunkBytes;
    if ((await this.redis.exists(key)) === 0) {
      throw new FileStoreError('not_committed', `File ${fileId} has no committed content`);
    }
    for (;;) {
      const chunks = await this.redis.lrangeBuffer(key, chunk, chunk + CHUNKS_PER_READ - 1);
      for (const data of chunks) {
        const piece = skip > 0 ? data.subarray(Math.min(skip, data.length)) : data;
        skip = 0;
        if (piece.length > 0) yield piece;
      }
      if (chunks.length < CHUNKS_PER_READ) return;
      chunk += CHUNKS_PER_READ;
    }
  }

  async size(fileId: string): Promise<number | undefined> {
    const key = this.key(fileId);
    const [[, count], [, last]] = (await this.redis.multi().llen(key).lindexBuffer(key, -1).exec()) as [
      [unknown, number],
      [unknown, Buffer | null],
    ];
    if (count === 0 || !last) return undefined;
    return (count - 1) * this.chunkBytes + last.length;
  }

  async delete(fileId: string): Promise<void> {
    await this.redis.del(this.key(fileId));
  }

  /** The line itself: a batch's lines stay in its Redis list until finalization. */
  async spoolLine(batchId: string, lineId: string, line: string): Promise<string> {
    checkedBatchId(batchId);
    checkedLineId(lineId);
    return line;
  }

  async unspool(batchId: string, entries: readonly Buffer[]): Promise<Buffer[]> {
    checkedBatchId(batchId);
    for (const entry of entries) {
      if (!isInlineEntry(entry)) {
        // Written by a process with MOA_FILES_DIR set: the processes disagree on the store.
        throw spoolMissing(batchId);
      }
    }
    return [...entries];
  }

  async discardSpooled(batchId: string): Promise<void> {
    checkedBatchId(batchId);
  }

  async dropSpool(batchId: string): Promise<void> {
    checkedBatchId(batchId);
  }

  /** Nothing to do: committed chunks expire with their metadata, unfinished writes within a day. */
  async sweep(): Promise<FileSweepReport> {
    return { files: 0, partials: 0, spools: 0 };
  }
}

/** A batch's list holds a line spooled to a directory: written by a process with MOA_FILES_DIR set. */
function spoolMissing(batchId: string): FileStoreError {
  return new FileStoreError(
    'spool_missing',
    `Batch ${batchId} has a line spooled to a directory, but this process stores files in Redis: every API and worker process must have the same MOA_FILES_DIR`,
  );
}

import type { Redis } from 'ioredis';
import {
  BATCH_RETENTION_SECONDS,
  FILE_CHUNK_BYTES,
  fileChunksKey,
  fileIndexKey,
  fileKey,
  tenantFileBytesKey,
} from './batch-keys.js';
import { ownerTenant } from './tenancy.js';

/** The OpenAI file object. */
export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: 'processed';
  expires_at: number | null;
  status_details: null;
}

/** Metadata of a stored file, as kept in its hash. */
export interface StoredFile {
  id: string;
  /** The tenant that uploaded it (or owns the batch that wrote it). */
  tenant: string;
  bytes: number;
  createdAt: number;
  filename: string;
  purpose: string;
  /** Lines that are not blank. */
  lines: number;
  /** Whether the content is valid UTF-8. */
  utf8: boolean;
}

/** The file object of DESIGN §4 for a stored file. */
export function fileObject(file: StoredFile): FileObject {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: file.createdAt,
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
    expires_at: file.createdAt + BATCH_RETENTION_SECONDS,
    status_details: null,
  };
}

/** Reads a file's metadata; undefined when there is no such (complete) file. */
export async function readStoredFile(
  redis: Redis,
  prefix: string,
  fileId: string,
): Promise<StoredFile | undefined> {
  const hash = await redis.hgetall(fileKey(prefix, fileId));
  if (!hash.id || hash.complete !== '1') return undefined;
  return {
    id: hash.id,
    tenant: ownerTenant(hash.tenant),
    bytes: Number(hash.bytes ?? 0),
    createdAt: Number(hash.created_at ?? 0),
    filename: hash.filename ?? '',
    purpose: hash.purpose ?? '',
    lines: Number(hash.lines ?? 0),
    utf8: hash.utf8 !== '0',
  };
}

/**
 * Writes a file's metadata, marking it complete, with its retention on both
 * keys, and lists it in its tenant's index and the index of all files.
 */
export async function saveStoredFile(redis: Redis, prefix: string, file: StoredFile): Promise<void> {
  const score = file.createdAt * 1000;
  await redis
    .multi()
    .hset(fileKey(prefix, file.id), {
      id: file.id,
      tenant: file.tenant,
      bytes: file.bytes,
      created_at: file.createdAt,
      filename: file.filename,
      purpose: file.purpose,
      lines: file.lines,
      utf8: file.utf8 ? '1' : '0',
      complete: '1',
    })
    .expire(fileKey(prefix, file.id), BATCH_RETENTION_SECONDS)
    .expire(fileChunksKey(prefix, file.id), BATCH_RETENTION_SECONDS)
    .zadd(fileIndexKey(prefix), score, file.id)
    .zadd(fileIndexKey(prefix, file.tenant), score, file.id)
    .hset(tenantFileBytesKey(prefix, file.tenant), file.id, file.bytes)
    .exec();
}

/** Deletes a file and its index entries; true when it existed. */
export async function deleteStoredFile(
  redis: Redis,
  prefix: string,
  fileId: string,
  tenant?: string,
): Promise<boolean> {
  const pipeline = redis
    .multi()
    .del(fileKey(prefix, fileId), fileChunksKey(prefix, fileId))
    .zrem(fileIndexKey(prefix), fileId);
  if (tenant !== undefined) {
    pipeline.zrem(fileIndexKey(prefix, tenant), fileId).hdel(tenantFileBytesKey(prefix, tenant), fileId);
  }
  const [[, removed]] = (await pipeline.exec()) as [[unknown, number]];
  return removed > 0;
}

/**
 * Appends bytes to a file's chunk list, at most `chunkBytes` per chunk. Holds
 * at most one chunk in memory; `write` resolves once earlier chunks are in
 * Redis, so a caller that awaits it gets backpressure.
 */
export class ChunkWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes written so far. */
  bytes = 0;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly chunkBytes = FILE_CHUNK_BYTES,
  ) {}

  async write(data: Buffer): Promise<void> {
    this.bytes += data.length;
    this.pending.push(data);
    this.pendingBytes += data.length;
    while (this.pendingBytes >= this.chunkBytes) {
      const all = Buffer.concat(this.pending);
      await this.redis.rpush(this.key, all.subarray(0, this.chunkBytes));
      const rest = all.subarray(this.chunkBytes);
      this.pending = rest.length > 0 ? [Buffer.from(rest)] : [];
      this.pendingBytes = rest.length;
    }
  }

  async end(): Promise<void> {
    if (this.pendingBytes > 0) await this.redis.rpush(this.key, Buffer.concat(this.pending));
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/** Streams a file's chunks from Redis, a few at a time. */
export async function* readFileChunks(
  redis: Redis,
  prefix: string,
  fileId: string,
  perRead = 4,
): AsyncGenerator<Buffer> {
  const key = fileChunksKey(prefix, fileId);
  for (let start = 0; ; start += perRead) {
    const chunks = await redis.lrangeBuffer(key, start, start + perRead - 1);
    for (const chunk of chunks) yield chunk;
    if (chunks.length < perRead) return;
  }
}

/** One line of a file: its text, or `tooLong` when it was over the limit (its text is then dropped). */
export interface FileLine {
  /** 1-based line number in the file. */
  number: number;
  text: string;
  tooLong: boolean;
}

/**
 * Streams a file line by line (split on `\n` at the byte level, so a
 * character split across chunks is whole again). A line longer than
 * `maxLineBytes` is reported without its text and never held whole.
 */
export async function* readFileLines(
  redis: Redis,
  prefix: string,
  fileId: string,
  maxLineBytes: number,
): AsyncGenerator<FileLine> {
  const decoder = new TextDecoder('utf-8');
  let parts: Buffer[] = [];
  let partBytes = 0;
  let tooLong = false;
  let number = 0;
  const take = (): FileLine => {
    number += 1;
    const line: FileLine = {
      number,
      text: tooLong ? '' : decoder.decode(Buffer.concat(parts)).replace(/\r$/, ''),
      tooLong,
    };
    parts = [];
    partBytes = 0;
    tooLong = false;
    return line;
  };
  for await (const chunk of readFileChunks(redis, prefix, fileId)) {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(0x0a, start);
      const end = newline === -1 ? chunk.length : newline;
      if (!tooLong) {
        partBytes += end - start;
        if (partBytes > maxLineBytes) {
          tooLong = true;
          parts = [];
        } else if (end > start) parts.push(chunk.subarray(start, end));
      }
      if (newline === -1) break;
      yield take();
      start = newline + 1;
    }
  }
  if (partBytes > 0 || tooLong) yield take();
}

/**
 * Turns a list of lines into a file (JSONL, one entry a line), a few hundred
 * entries at a time, replacing any partial content from an earlier attempt.
 * Returns the file's size and line count.
 */
export async function listToFile(
  redis: Redis,
  prefix: string,
  listKey: string,
  fileId: string,
): Promise<{ bytes: number; lines: number }> {
  const chunksKey = fileChunksKey(prefix, fileId);
  await redis.del(chunksKey);
  const writer = new ChunkWriter(redis, chunksKey);
  let lines = 0;
  for (let start = 0; ; start += 500) {
    const entries = await redis.lrangeBuffer(listKey, start, start + 499);
    for (const entry of entries) {
      await writer.write(Buffer.concat([entry, Buffer.from('\n')]));
      lines += 1;
    }
    if (entries.length < 500) break;
  }
  await writer.end();
  return { bytes: writer.bytes, lines };
}

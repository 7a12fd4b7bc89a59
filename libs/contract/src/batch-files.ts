import type { Redis } from 'ioredis';
import { BATCH_RETENTION_SECONDS, fileIndexKey, fileKey, tenantFileBytesKey } from './batch-keys.js';
import type { FileFromList, FileStore } from './file-store.js';
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
 * Writes a file's metadata, marking it complete (call it once the content
 * is committed to the file store), with its retention, and lists it in its tenant's index and the index of all files.
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
    .zadd(fileIndexKey(prefix), score, file.id)
    .zadd(fileIndexKey(prefix, file.tenant), score, file.id)
    .hset(tenantFileBytesKey(prefix, file.tenant), file.id, file.bytes)
    .exec();
}

/**
 * Deletes a file: its metadata and index entries first (it stops being a
 * file at once), then its content. True when its metadata existed.
 */
export async function deleteStoredFile(
  redis: Redis,
  prefix: string,
  files: FileStore,
  fileId: string,
  tenant?: string,
): Promise<boolean> {
  const pipeline = redis.multi().del(fileKey(prefix, fileId)).zrem(fileIndexKey(prefix), fileId);
  if (tenant !== undefined) {
    pipeline.zrem(fileIndexKey(prefix, tenant), fileId).hdel(tenantFileBytesKey(prefix, tenant), fileId);
  }
  const [[, removed]] = (await pipeline.exec()) as [[unknown, number]];
  await files.delete(fileId);
  return removed > 0;
}

/** Entries of a batch's output or error list read per round trip at finalization. */
const ENTRIES_PER_READ = 200;

/**
 * Makes a batch's output or error file of its list in Redis (one entry per
 * item, in the order the items were recorded: a line, or where the file
 * store spooled it), one line per entry. A store that keeps the lines in the
 * list itself moves them into the file (`FileStore.fileFromList`, never
 * holding them twice); otherwise they are streamed into the file store a few
 * hundred entries at a time. Either way the content is committed only once
 * whole, so a crash midway leaves no file (a retry finishes it, or writes it
 * again, replacing nothing visible). Returns the file's size and line
 * count, or undefined when the list had no entry.
 */
export async function listToFile(
  redis: Redis,
  files: FileStore,
  listKey: string,
  batchId: string,
  fileId: string,
): Promise<FileFromList | undefined> {
  if (files.fileFromList) return files.fileFromList(listKey, batchId, fileId);
  if ((await redis.llen(listKey)) === 0) return undefined;
  const writer = await files.create(fileId);
  let lines = 0;
  try {
    for (let start = 0; ; start += ENTRIES_PER_READ) {
      const entries = await redis.lrangeBuffer(listKey, start, start + ENTRIES_PER_READ - 1);
      for (const line of await files.unspool(batchId, entries)) {
        await writer.write(Buffer.concat([line, NEWLINE]));
        lines += 1;
      }
      if (entries.length < ENTRIES_PER_READ) break;
    }
    return { bytes: await writer.commit(), lines };
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

const NEWLINE = Buffer.from('\n');

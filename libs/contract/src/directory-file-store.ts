import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BATCH_ID_PATTERN, FILE_ID_PATTERN } from './batch-keys.js';
import { checkedBatchId, checkedFileId, checkedLineId } from './file-id.js';
import { FileStoreError } from './file-store-error.js';
import {
  isInlineEntry,
  type FileReadOptions,
  type FileStore,
  type FileSweepOptions,
  type FileSweepReport,
  type FileWriter,
} from './file-store.js';

/** Options of {@link DirectoryFileStore}. */
export interface DirectoryFileStoreOptions {
  /** The directory (`MOA_FILES_DIR`): an absolute path, shared by every API and worker process. */
  directory: string;
  /** Bytes gathered before a write to disk, and read per piece. @defaultValue 262144 (256 KiB) */
  bufferBytes?: number;
}

/** What an unfinished write is called: a dot file, never a valid file id. */
const PARTIAL_SUFFIX = '.partial';

/** A spooled line's entry in a batch's list: this, then the line's id. */
const SPOOL_REFERENCE = '@';

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException).code === 'ENOENT';

/** Flushes a directory's entries (a rename) to disk; some file systems refuse, which changes nothing. */
async function syncDirectory(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch {
    // A directory that cannot be fsynced (some network file systems) is as durable as it gets.
  } finally {
    await handle?.close();
  }
}

/**
 * Opens a new temporary file beside `path`, to be written, fsynced and then
 * renamed over `path` (atomic on one file system, NFS included): a crash at
 * any point leaves the old content or the new one at `path`, plus at worst a
 * dot file that is no id.
 */
async function openPartial(path: string): Promise<{ handle: FileHandle; partial: string }> {
  const partial = join(
    dirname(path),
    `.${basename(path)}.${randomBytes(6).toString('hex')}${PARTIAL_SUFFIX}`,
  );
  return { handle: await open(partial, 'wx', 0o640), partial };
}

/**
 * Files on disk under `directory` (`MOA_FILES_DIR`), Redis keeping only
 * their metadata:
 *
 * - `files/<file id>`: committed content. A write goes to
 *   `files/.<file id>.<random>.partial`, is fsynced, renamed to its name and
 *   the directory fsynced: a killed process never leaves a complete-looking
 *   file, and a reader of an id with no committed content gets
 *   `FileStoreError` `not_committed`.
 * - `spool/<batch id>/<line id>`: a batch item's output or error line, each
 *   written the same way before the item is recorded in Redis. The batch's
 *   Redis list holds `@<line id>` in the order items were recorded; the
 *   finalization reads the lines in that order into the output file, then
 *   drops the batch's spool. Per-line files rather than one appended file:
 *   `O_APPEND` is not atomic across the hosts of a shared volume (NFS), and a
 *   line whose item turns out recorded already must not be in the file.
 *
 * Ids are checked against their patterns (letters, digits, `-`, `_`) before
 * they become paths, so no id names anything outside `directory`.
 */
export class DirectoryFileStore implements FileStore {
  readonly kind = 'directory';
  private readonly filesDirectory: string;
  private readonly spoolDirectory: string;
  private readonly bufferBytes: number;
  private ready: Promise<void> | undefined;

  constructor(options: DirectoryFileStoreOptions) {
    this.filesDirectory = join(options.directory, 'files');
    this.spoolDirectory = join(options.directory, 'spool');
    this.bufferBytes = options.bufferBytes ?? 256 * 1024;
  }

  /** Creates the store's directories once (a volume mounted empty has none). */
  private prepare(): Promise<void> {
    this.ready ??= Promise.all([
      mkdir(this.filesDirectory, { recursive: true }),
      mkdir(this.spoolDirectory, { recursive: true }),
    ]).then(
      () => undefined,
      (error: unknown) => {
        this.ready = undefined;
        throw error;
      },
    );
    return this.ready;
  }

  /** Makes the store's directories and writes, fsyncs and removes a probe file in each. */
  async check(): Promise<void> {
    try {
      await this.prepare();
      for (const directory of [this.filesDirectory, this.spoolDirectory]) {
        const probe = join(directory, `.probe.${randomBytes(6).toString('hex')}${PARTIAL_SUFFIX}`);
        const handle = await open(probe, 'wx', 0o640);
        try {
          await handle.writeFile('probe');
          await handle.sync();
        } finally {
          await handle.close();
        }
        await unlink(probe);
      }
    } catch (error) {
      throw new FileStoreError(
        'unwritable',
        `MOA_FILES_DIR ${JSON.stringify(dirname(this.filesDirectory))} cannot be written: ${(error as Error).message}`,
      );
    }
  }

  private path(fileId: string): string {
    return join(this.filesDirectory, checkedFileId(fileId));
  }

  async create(fileId: string): Promise<FileWriter> {
    const path = this.path(fileId);
    await this.prepare();
    const { handle, partial } = await openPartial(path);
    const { bufferBytes, filesDirectory } = this;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let bytes = 0;
    let ended = false;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      await handle.write(data);
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
        if (pendingBytes >= bufferBytes) await flush();
      },
      async commit() {
        if (ended) throw new Error(`file ${fileId}: commit after commit or abort`);
        ended = true;
        try {
          await flush();
          await handle.sync();
        } finally {
          await handle.close();
        }
        await rename(partial, path);
        await syncDirectory(filesDirectory);
        return bytes;
      },
      async abort() {
        if (ended) return;
        ended = true;
        pending = [];
        await handle.close().catch(() => undefined);
        await unlink(partial).catch(() => undefined);
      },
    };
  }

  async *read(fileId: string, options: FileReadOptions = {}): AsyncGenerator<Buffer> {
    const path = this.path(fileId);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (isMissing(error)) {
        throw new FileStoreError('not_committed', `File ${fileId} has no committed content`);
      }
      throw error;
    }
    // An open file reads whole even if it is deleted or replaced meanwhile.
    try {
      let position = options.start ?? 0;
      for (;;) {
        const buffer = Buffer.allocUnsafe(this.bufferBytes);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
        if (bytesRead === 0) return;
        position += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    } finally {
      await handle.close();
    }
  }

  async size(fileId: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(fileId))).size;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  async delete(fileId: string): Promise<void> {
    await rm(this.path(fileId), { force: true });
  }

  private spoolPath(batchId: string, lineId?: string): string {
    const directory = join(this.spoolDirectory, checkedBatchId(batchId));
    return lineId === undefined ? directory : join(directory, checkedLineId(lineId));
  }

  async spoolLine(batchId: string, lineId: string, line: string): Promise<string> {
    const path = this.spoolPath(batchId, lineId);
    await this.prepare();
    await mkdir(dirname(path), { recursive: true });
    const { handle, partial } = await openPartial(path);
    try {
      await handle.write(line);
      await handle.sync();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(partial).catch(() => undefined);
      throw error;
    }
    await handle.close();
    await rename(partial, path);
    return `${SPOOL_REFERENCE}${lineId}`;
  }

  async unspool(batchId: string, entries: readonly Buffer[]): Promise<Buffer[]> {
    checkedBatchId(batchId);
    return Promise.all(
      entries.map(async (entry) => {
        if (isInlineEntry(entry)) return entry;
        const lineId = entry.toString('utf8').slice(SPOOL_REFERENCE.length);
        const path = this.spoolPath(batchId, lineId);
        try {
          const handle = await open(path, 'r');
          try {
            return await handle.readFile();
          } finally {
            await handle.close();
          }
        } catch (error) {
          if (!isMissing(error)) throw error;
          throw new FileStoreError(
            'spool_missing',
            `Line ${lineId} of batch ${batchId} is not in ${this.spoolPath(batchId)}: was the volume changed, or MOA_FILES_DIR set differently on another process?`,
          );
        }
      }),
    );
  }

  async discardSpooled(batchId: string, entry: string): Promise<void> {
    if (isInlineEntry(entry)) return;
    await rm(this.spoolPath(batchId, entry.slice(SPOOL_REFERENCE.length)), { force: true });
  }

  async dropSpool(batchId: string): Promise<void> {
    await rm(this.spoolPath(batchId), { recursive: true, force: true });
  }

  async sweep(options: FileSweepOptions): Promise<FileSweepReport> {
    await this.prepare();
    const now = options.now ?? Date.now();
    const settled = now - (options.graceMs ?? SWEEP_GRACE_MS);
    const report: FileSweepReport = { files: 0, partials: 0, spools: 0 };
    const files: string[] = [];
    for (const name of await readdir(this.filesDirectory)) {
      const modified = await modifiedAt(join(this.filesDirectory, name));
      if (modified === undefined) continue;
      if (name.endsWith(PARTIAL_SUFFIX)) {
        if (modified < now - ABANDONED_WRITE_MS) {
          await rm(join(this.filesDirectory, name), { force: true });
          report.partials += 1;
        }
      } else if (FILE_ID_PATTERN.test(name) && modified < settled) files.push(name);
    }
    for (let start = 0; start < files.length; start += SWEEP_BATCH) {
      const ids = files.slice(start, start + SWEEP_BATCH);
      const known = await options.haveMetadata(ids);
      for (const [index, fileId] of ids.entries()) {
        if (known[index]) continue;
        await rm(join(this.filesDirectory, fileId), { force: true });
        report.files += 1;
      }
    }
    const batches: string[] = [];
    for (const name of await readdir(this.spoolDirectory)) {
      const modified = await modifiedAt(join(this.spoolDirectory, name));
      if (modified !== undefined && BATCH_ID_PATTERN.test(name) && modified < settled) batches.push(name);
    }
    for (let start = 0; start < batches.length; start += SWEEP_BATCH) {
      const ids = batches.slice(start, start + SWEEP_BATCH);
      const running = await options.areRunning(ids);
      for (const [index, batchId] of ids.entries()) {
        if (running[index]) continue;
        await this.dropSpool(batchId);
        report.spools += 1;
      }
    }
    return report;
  }
}

/** The default grace of a sweep: an hour. */
const SWEEP_GRACE_MS = 3600_000;

/** A write not committed within a day is abandoned (an upload may take at most `MOA_UPLOAD_TIMEOUT_MS`). */
const ABANDONED_WRITE_MS = 24 * 3600_000;

/** Ids a sweep asks about at once. */
const SWEEP_BATCH = 500;

/** When a path last changed, in ms; undefined when it is gone meanwhile. */
async function modifiedAt(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).mtimeMs;
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

/**
 * Where the content of files (uploads, batch output and error files) lives.
 * Their metadata (the `<prefix>:moa-file:<id>` hash: owner, size, lines,
 * `complete`) is always in Redis (batch-files.ts); a file exists for the API
 * only once both its content is committed here and its metadata is saved.
 *
 * Two implementations, chosen by `createFileStore` from `MOA_FILES_DIR`:
 * `RedisFileStore` (the default: a list of chunks per file) and
 * `DirectoryFileStore` (one file per id on a local disk or a shared volume).
 * Every process of a deployment must use the same store (docs/operations.md).
 */
export interface FileStore {
  /** Which implementation this is (for logs and the start-up line). */
  readonly kind: 'redis' | 'directory';

  /**
   * Checks at start-up that the store can be written, so that a process
   * whose `MOA_FILES_DIR` is missing, read-only or not a directory stops at
   * once with a message naming it, not at the first upload or finalize.
   * @throws FileStoreError `unwritable`
   */
  check(): Promise<void>;

  /**
   * Starts writing file `fileId`. Nothing written is readable under that id
   * until `commit` resolves; committing replaces an earlier content of the
   * same id whole. Throws `FileStoreError` `invalid_id` for an id that is not
   * `file-` and letters and digits.
   */
  create(fileId: string): Promise<FileWriter>;

  /**
   * Streams a committed file's content from byte `start` on, a bounded
   * piece at a time (never the whole file). Rejects (on the first `next`)
   * with `FileStoreError` `not_committed` when there is no committed content.
   */
  read(fileId: string, options?: FileReadOptions): AsyncIterable<Buffer>;

  /** The committed content's size in bytes; undefined when there is none. */
  size(fileId: string): Promise<number | undefined>;

  /** Deletes a file's committed content; a missing file is no error. */
  delete(fileId: string): Promise<void>;

  /**
   * Keeps one line of a batch's output or error file, durably, until the
   * batch is finalized. Called before the item is recorded; returns the entry
   * that the recording script pushes on the batch's list in Redis: the line
   * itself (`RedisFileStore`: the list holds the lines, as it always has) or
   * a short reference to where the line was written (`DirectoryFileStore`).
   * The list's order is the file's order, so appends by many worker
   * processes stay ordered by when each item was recorded.
   */
  spoolLine(batchId: string, lineId: string, line: string): Promise<string>;

  /**
   * The lines of entries from a batch's list, in order (without `\n`). An
   * entry that is a line (a JSON object: starts with `{`) is itself; a
   * reference is read back from where `spoolLine` wrote it.
   */
  unspool(batchId: string, entries: readonly Buffer[]): Promise<Buffer[]>;

  /**
   * Makes a file of a batch's output or error list by moving its lines out
   * of the list as they go into the file, so they are never held twice; a
   * store whose lines live in the list itself (Redis) has it. Without it the
   * list is copied with `create` and `unspool` (see `listToFile`).
   *
   * @returns the file's size and lines, or undefined when there were none.
   */
  fileFromList?(listKey: string, batchId: string, fileId: string): Promise<FileFromList | undefined>;

  /** Forgets one spooled line that was not recorded (its item had been recorded already). */
  discardSpooled(batchId: string, entry: string): Promise<void>;

  /** Forgets every spooled line of a batch (once its files are committed, or it has ended). */
  dropSpool(batchId: string): Promise<void>;

  /**
   * Deletes what nothing refers to any more: content whose file's metadata
   * is gone (Redis expired it, or a process died between commit and saving
   * it), writes abandoned more than a day ago, and the spools of batches
   * that have ended or are gone. The Redis store has nothing to do (Redis
   * expires its keys itself).
   */
  sweep(options: FileSweepOptions): Promise<FileSweepReport>;
}

/** What {@link FileStore.fileFromList} made: the file's size and lines. */
export interface FileFromList {
  bytes: number;
  lines: number;
}

/** What {@link FileStore.sweep} asks its caller (which knows Redis). */
export interface FileSweepOptions {
  /** For each file id, whether its metadata exists (it is a file for the API). */
  haveMetadata(fileIds: readonly string[]): Promise<boolean[]>;
  /** For each batch id, whether the batch still runs (it may spool or finalize lines). */
  areRunning(batchIds: readonly string[]): Promise<boolean[]>;
  /**
   * Anything changed more recently than this is left alone: a file just
   * committed whose metadata is being saved, a spool being started.
   * @defaultValue 3600000 (an hour)
   */
  graceMs?: number;
  /** The time to compare with. @defaultValue Date.now() */
  now?: number;
}

/** What a sweep deleted. */
export interface FileSweepReport {
  /** Committed files without metadata. */
  files: number;
  /** Abandoned writes (older than a day). */
  partials: number;
  /** Spools of batches no longer running. */
  spools: number;
}

/** Options of {@link FileStore.read}. */
export interface FileReadOptions {
  /** The byte to start at (a validation resumes mid-file). @defaultValue 0 */
  start?: number;
}

/**
 * A file being written: bytes go in order, then `commit` makes them the
 * file's content in one step, or `abort` drops them. Until then a crash
 * leaves nothing that reads as the file.
 */
export interface FileWriter {
  /** Bytes written so far. */
  readonly bytes: number;
  /** Appends `data`; resolves once the store has taken it (await it for backpressure). */
  write(data: Buffer): Promise<void>;
  /** Makes the bytes written the file's content, durably; returns their count. */
  commit(): Promise<number>;
  /** Drops what was written; the file's earlier content, if any, stays. Safe to call twice. */
  abort(): Promise<void>;
}

/** Whether an entry of a batch's output or error list is a line itself (a JSON object), not a reference. */
export function isInlineEntry(entry: Buffer | string): boolean {
  return typeof entry === 'string' ? entry.startsWith('{') : entry[0] === 0x7b;
}

/** Why a file store refused an operation. */
export type FileStoreErrorCode =
  /** No committed content under that id: never written, still being written, aborted or deleted. */
  | 'not_committed'
  /** The id is not one the store accepts (so it can never name a path outside the store). */
  | 'invalid_id'
  /** A batch's spooled line is not where its entry says (see `FileStore.unspool`). */
  | 'spool_missing'
  /** The store cannot be written at all (see `FileStore.check`). */
  | 'unwritable';

/**
 * An operation of a {@link FileStore} that cannot succeed, with a code a
 * caller can branch on. Every other error of a store is the underlying I/O
 * or Redis error, unchanged.
 */
export class FileStoreError extends Error {
  override readonly name = 'FileStoreError';

  constructor(
    readonly code: FileStoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

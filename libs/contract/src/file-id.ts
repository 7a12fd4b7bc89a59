import { FileStoreError } from './file-store-error.js';
import { BATCH_ID_PATTERN, FILE_ID_PATTERN } from './batch-keys.js';

/** The ids of a batch's lines (`batch_req_…`), as `newBatchRequestId` makes them. */
const LINE_ID_PATTERN = /^batch_req_[A-Za-z0-9]{1,64}$/;

/**
 * Returns `id` when it matches `pattern`, else throws `FileStoreError`
 * `invalid_id`. Stores check every id they get with it: ids become Redis
 * keys and file names, and only letters, digits, `-` and `_` can never name
 * a path outside the store's directory.
 */
function checked(id: string, pattern: RegExp, what: string): string {
  if (!pattern.test(id)) throw new FileStoreError('invalid_id', `Invalid ${what} id ${JSON.stringify(id)}`);
  return id;
}

/** A file id (`file-…`) a store accepts. */
export const checkedFileId = (id: string): string => checked(id, FILE_ID_PATTERN, 'file');
/** A batch id (`batch_…`) a store accepts. */
export const checkedBatchId = (id: string): string => checked(id, BATCH_ID_PATTERN, 'batch');
/** A batch line id (`batch_req_…`) a store accepts. */
export const checkedLineId = (id: string): string => checked(id, LINE_ID_PATTERN, 'batch line');

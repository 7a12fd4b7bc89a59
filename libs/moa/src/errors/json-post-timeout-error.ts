/** The exchange took longer than its timeout. */
export class JsonPostTimeoutError extends Error {
  override readonly name = 'JsonPostTimeoutError';
}

/** No complete response: DNS, TCP or TLS failure, or a connection dropped midway. */
export class JsonPostConnectionError extends Error {
  override readonly name = 'JsonPostConnectionError';
}

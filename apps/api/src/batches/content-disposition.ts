/**
 * An RFC 6266 `Content-Disposition: attachment` value for any file name:
 * a plain `filename` that every client understands (non-ASCII and unsafe
 * characters replaced by `_`) and, when the name is not plain ASCII, the
 * exact name as RFC 5987 `filename*=UTF-8''…`. Node refuses header values
 * outside Latin-1, so a raw Unicode name would fail the response.
 */
export function attachmentDisposition(filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  if (fallback === filename) return `attachment; filename="${filename}"`;
  const encoded = encodeURIComponent(filename).replace(
    /['()*]/g,
    (character) => `%${character.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

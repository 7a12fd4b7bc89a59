import type { FileStore } from '@moa-queue/contract';

/** One line of a file, and where the line after it starts. */
export interface PositionedLine {
  /** The line without its `\n` (and a trailing `\r`); empty when `tooLong`. */
  text: string;
  /** Longer than the limit: its text was dropped as it was read, never held whole. */
  tooLong: boolean;
  /** Bytes of the line (as far as they were counted, for a line too long). */
  bytes: number;
  /** The byte where the next line starts: a validation resumes there. */
  next: number;
}

/**
 * Streams a stored file line by line from byte `start` (split on `\n` at
 * the byte level, so a character split across the store's pieces is whole
 * again). Holds at most one line (up to `maxLineBytes`) and one piece of the
 * store's read at a time.
 */
export async function* readLinesFrom(
  files: FileStore,
  fileId: string,
  start: number,
  maxLineBytes: number,
): AsyncGenerator<PositionedLine> {
  let parts: Buffer[] = [];
  let bytes = 0;
  let tooLong = false;
  const take = (next: number): PositionedLine => {
    const line: PositionedLine = {
      text: tooLong ? '' : Buffer.concat(parts).toString('utf8').replace(/\r$/, ''),
      tooLong,
      bytes,
      next,
    };
    parts = [];
    bytes = 0;
    tooLong = false;
    return line;
  };
  let position = start;
  for await (const piece of files.read(fileId, { start })) {
    let from = 0;
    for (;;) {
      const newline = piece.indexOf(0x0a, from);
      const end = newline === -1 ? piece.length : newline;
      bytes += end - from;
      if (!tooLong) {
        if (bytes > maxLineBytes) {
          tooLong = true;
          parts = [];
        } else if (end > from) parts.push(piece.subarray(from, end));
      }
      if (newline === -1) break;
      yield take(position + newline + 1);
      from = newline + 1;
    }
    position += piece.length;
  }
  // A last line without a newline.
  if (bytes > 0 || tooLong) yield take(position);
}

import { fileChunksKey } from '@moa-queue/contract';
import type { Redis } from 'ioredis';

/** A place in a stored file: a chunk of its content list, and a byte in that chunk. */
export interface FilePosition {
  chunk: number;
  offset: number;
}

/** One line of a file, and where the line after it starts. */
export interface PositionedLine {
  /** The line without its `\n` (and a trailing `\r`); empty when `tooLong`. */
  text: string;
  /** Longer than the limit: its text was dropped as it was read, never held whole. */
  tooLong: boolean;
  /** Bytes of the line (as far as they were counted, for a line too long). */
  bytes: number;
  /** Where the next line starts: a validation resumes there. */
  next: FilePosition;
}

/** Chunks (256 KiB each) read per round trip. */
const CHUNKS_PER_READ = 4;

/**
 * Streams a stored file line by line from `start` (split on `\n` at the
 * byte level, so a character split across chunks is whole again). Holds at
 * most one line (up to `maxLineBytes`) and one read of chunks at a time.
 */
export async function* readLinesFrom(
  redis: Redis,
  prefix: string,
  fileId: string,
  start: FilePosition,
  maxLineBytes: number,
): AsyncGenerator<PositionedLine> {
  const key = fileChunksKey(prefix, fileId);
  let parts: Buffer[] = [];
  let bytes = 0;
  let tooLong = false;
  const take = (next: FilePosition): PositionedLine => {
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
  let chunkNumber = start.chunk;
  for (;;) {
    const chunks = await redis.lrangeBuffer(key, chunkNumber, chunkNumber + CHUNKS_PER_READ - 1);
    for (const chunk of chunks) {
      let from = chunkNumber === start.chunk ? Math.min(start.offset, chunk.length) : 0;
      for (;;) {
        const newline = chunk.indexOf(0x0a, from);
        const end = newline === -1 ? chunk.length : newline;
        bytes += end - from;
        if (!tooLong) {
          if (bytes > maxLineBytes) {
            tooLong = true;
            parts = [];
          } else if (end > from) parts.push(chunk.subarray(from, end));
        }
        if (newline === -1) break;
        yield take({ chunk: chunkNumber, offset: newline + 1 });
        from = newline + 1;
      }
      chunkNumber += 1;
    }
    if (chunks.length < CHUNKS_PER_READ) break;
  }
  // A last line without a newline.
  if (bytes > 0 || tooLong) yield take({ chunk: chunkNumber, offset: 0 });
}

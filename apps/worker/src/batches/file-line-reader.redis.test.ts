import { ChunkWriter, fileChunksKey } from '@moa-queue/contract';
import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { readLinesFrom, type FilePosition, type PositionedLine } from './file-line-reader.js';

describe('readLinesFrom', () => {
  let redis: Redis;
  const prefix = uniquePrefix('line-reader');

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.unlink(...keys);
    redis.disconnect();
  });

  /** Stores `content` in chunks of `chunkBytes` (tiny, so lines and characters straddle chunks). */
  async function store(fileId: string, content: string, chunkBytes: number): Promise<void> {
    const writer = new ChunkWriter(redis, fileChunksKey(prefix, fileId), chunkBytes);
    await writer.write(Buffer.from(content));
    await writer.end();
  }
  async function readAll(
    fileId: string,
    from: FilePosition,
    maxLineBytes: number,
  ): Promise<PositionedLine[]> {
    const lines: PositionedLine[] = [];
    for await (const line of readLinesFrom(redis, prefix, fileId, from, maxLineBytes)) lines.push(line);
    return lines;
  }

  it('splits on newlines across chunks, whole characters, CRLF, a last line without a newline', async () => {
    const content = 'first\r\nsécond ✓ line\n\n{"a":"ü"}\nlast';
    for (const chunkBytes of [1, 3, 7, 64]) {
      const fileId = `file-split${chunkBytes}`;
      await store(fileId, content, chunkBytes);
      const lines = await readAll(fileId, { chunk: 0, offset: 0 }, 1024);
      expect(lines.map((line) => line.text)).toEqual(['first', 'sécond ✓ line', '', '{"a":"ü"}', 'last']);
      expect(lines.every((line) => !line.tooLong)).toBe(true);
    }
  });

  it('resumes from any line’s next position with exactly the lines after it', async () => {
    const content = `${Array.from({ length: 12 }, (_, index) => `line ${index} ${'é'.repeat(index)}`).join('\n')}\n`;
    await store('file-resume', content, 5);
    const all = await readAll('file-resume', { chunk: 0, offset: 0 }, 1024);
    expect(all).toHaveLength(12);
    for (const [index, line] of all.entries()) {
      const rest = await readAll('file-resume', line.next, 1024);
      expect(rest.map((entry) => entry.text)).toEqual(all.slice(index + 1).map((entry) => entry.text));
    }
  });

  it('reports a line over the limit without its text, and goes on after it', async () => {
    await store('file-long', `short\n${'x'.repeat(100)}\nafter\n`, 8);
    const lines = await readAll('file-long', { chunk: 0, offset: 0 }, 50);
    expect(lines.map((line) => [line.text, line.tooLong])).toEqual([
      ['short', false],
      ['', true],
      ['after', false],
    ]);
  });
});

import { DirectoryFileStore, RedisFileStore, type FileStore } from '@moa-queue/contract';
import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLinesFrom, type PositionedLine } from './file-line-reader.js';

describe('readLinesFrom', () => {
  let redis: Redis;
  let stores: FileStore[] = [];
  const prefix = uniquePrefix('line-reader');
  const directory = mkdtempSync(join(tmpdir(), 'moa-line-reader-'));

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => {
    rmSync(directory, { recursive: true, force: true });
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.unlink(...keys);
    redis.disconnect();
  });

  /**
   * Stores `content` in pieces of `chunkBytes` (tiny, so lines and characters straddle them),
   * in Redis and in a directory; `readAll` reads from both and checks they agree.
   */
  async function store(fileId: string, content: string, chunkBytes: number): Promise<void> {
    stores = [
      new RedisFileStore({ redis, prefix, chunkBytes }),
      new DirectoryFileStore({ directory, bufferBytes: chunkBytes }),
    ];
    for (const files of stores) {
      const writer = await files.create(fileId);
      await writer.write(Buffer.from(content));
      await writer.commit();
    }
  }
  async function readAll(fileId: string, from: number, maxLineBytes: number): Promise<PositionedLine[]> {
    const results: PositionedLine[][] = [];
    for (const files of stores) {
      const lines: PositionedLine[] = [];
      for await (const line of readLinesFrom(files, fileId, from, maxLineBytes)) lines.push(line);
      results.push(lines);
    }
    expect(results[1]).toEqual(results[0]);
    return results[0]!;
  }

  it('splits on newlines across chunks, whole characters, CRLF, a last line without a newline', async () => {
    const content = 'first\r\nsécond ✓ line\n\n{"a":"ü"}\nlast';
    for (const chunkBytes of [1, 3, 7, 64]) {
      const fileId = `file-split${chunkBytes}`;
      await store(fileId, content, chunkBytes);
      const lines = await readAll(fileId, 0, 1024);
      expect(lines.map((line) => line.text)).toEqual(['first', 'sécond ✓ line', '', '{"a":"ü"}', 'last']);
      expect(lines.every((line) => !line.tooLong)).toBe(true);
    }
  });

  it('resumes from any line’s next position with exactly the lines after it', async () => {
    const content = `${Array.from({ length: 12 }, (_, index) => `line ${index} ${'é'.repeat(index)}`).join('\n')}\n`;
    await store('file-resume', content, 5);
    const all = await readAll('file-resume', 0, 1024);
    expect(all).toHaveLength(12);
    for (const [index, line] of all.entries()) {
      const rest = await readAll('file-resume', line.next, 1024);
      expect(rest.map((entry) => entry.text)).toEqual(all.slice(index + 1).map((entry) => entry.text));
    }
  });

  it('reports a line over the limit without its text, and goes on after it', async () => {
    await store('file-long', `short\n${'x'.repeat(100)}\nafter\n`, 8);
    const lines = await readAll('file-long', 0, 50);
    expect(lines.map((line) => [line.text, line.tooLong])).toEqual([
      ['short', false],
      ['', true],
      ['after', false],
    ]);
  });
});

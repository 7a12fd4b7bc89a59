import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTsProcess, uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DirectoryFileStore } from './directory-file-store.js';
import { FileStoreError } from './file-store-error.js';
import type { FileStore } from './file-store.js';
import { RedisFileStore } from './redis-file-store.js';

/** One store under test, and a look at its backend that the interface does not give. */
interface StoreUnderTest {
  files: FileStore;
  /** Bytes of unfinished writes held by the backend (Redis keys, or `.partial` files). */
  partialBytes(): Promise<number>;
  /** Environment of the crash test's child process (tests/support/file-store-writer.ts). */
  childEnvironment: Record<string, string>;
}

const PIECE_BYTES = 64 * 1024;

/** Piece `index` of a large test file: deterministic, different for every index. */
function piece(index: number): Buffer {
  const seed = createHash('sha256').update(String(index)).digest();
  const data = Buffer.allocUnsafe(PIECE_BYTES);
  for (let offset = 0; offset < PIECE_BYTES; offset += seed.length) seed.copy(data, offset);
  return data;
}

async function readAll(files: FileStore, fileId: string, start?: number): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const data of files.read(fileId, start === undefined ? {} : { start })) pieces.push(data);
  return Buffer.concat(pieces);
}

async function writeFile(files: FileStore, fileId: string, content: string | Buffer): Promise<void> {
  const writer = await files.create(fileId);
  await writer.write(Buffer.from(content));
  await writer.commit();
}

async function readError(files: FileStore, fileId: string): Promise<unknown> {
  try {
    await readAll(files, fileId);
  } catch (error) {
    return error;
  }
  return undefined;
}

const notCommitted = expect.objectContaining({ name: 'FileStoreError', code: 'not_committed' });

describe.each(['redis', 'directory'] as const)('the %s file store', (kind) => {
  let redis: Redis;
  let store: StoreUnderTest;
  const prefix = uniquePrefix(`file-store-${kind}`);
  const directory = mkdtempSync(join(tmpdir(), 'moa-file-store-'));
  const root = join(directory, 'root');

  beforeAll(() => {
    redis = new Redis(inject('redisUrl'));
    if (kind === 'redis') {
      store = {
        files: new RedisFileStore({ redis, prefix }),
        async partialBytes() {
          let total = 0;
          for (const key of await redis.keys(`${prefix}:*:partial:*`)) {
            for (const chunk of await redis.lrangeBuffer(key, 0, -1)) total += chunk.length;
          }
          return total;
        },
        childEnvironment: { STORE: 'redis', REDIS_URL: inject('redisUrl'), PREFIX: prefix },
      };
    } else {
      store = {
        files: new DirectoryFileStore({ directory: root }),
        partialBytes() {
          const filesDirectory = join(root, 'files');
          if (!existsSync(filesDirectory)) return Promise.resolve(0);
          return Promise.resolve(
            readdirSync(filesDirectory)
              .filter((name) => name.endsWith('.partial'))
              .reduce((total, name) => total + statSync(join(filesDirectory, name)).size, 0),
          );
        },
        childEnvironment: { STORE: 'directory', DIRECTORY: root },
      };
    }
  });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.unlink(...keys);
    redis.disconnect();
    rmSync(directory, { recursive: true, force: true });
  });

  it('streams 20 MiB in and out in bounded pieces, the bytes leaving before the commit', async () => {
    const { files } = store;
    const pieces = 320;
    const writer = await files.create('file-large');
    const written = createHash('sha256');
    for (let index = 0; index < pieces; index += 1) {
      const data = piece(index);
      written.update(data);
      await writer.write(data);
    }
    // Nearly all of it is in the backend already, under a name no reader sees.
    expect(await store.partialBytes()).toBeGreaterThanOrEqual(pieces * PIECE_BYTES - 256 * 1024);
    expect(await readError(files, 'file-large')).toEqual(notCommitted);
    expect(await files.size('file-large')).toBeUndefined();
    expect(await writer.commit()).toBe(pieces * PIECE_BYTES);
    expect(await store.partialBytes()).toBe(0);
    expect(await files.size('file-large')).toBe(pieces * PIECE_BYTES);

    const read = createHash('sha256');
    let bytes = 0;
    let largest = 0;
    for await (const data of files.read('file-large')) {
      read.update(data);
      bytes += data.length;
      largest = Math.max(largest, data.length);
    }
    expect(bytes).toBe(pieces * PIECE_BYTES);
    expect(read.digest('hex')).toBe(written.digest('hex'));
    expect(largest).toBeLessThanOrEqual(1024 * 1024);

    // From any byte on, including across the store's own piece boundaries.
    for (const start of [1, PIECE_BYTES - 1, 256 * 1024, 256 * 1024 + 7, pieces * PIECE_BYTES - 3]) {
      const tail = await readAll(files, 'file-large', start);
      expect(tail.length).toBe(pieces * PIECE_BYTES - start);
      const index = Math.floor(start / PIECE_BYTES);
      const expected = Buffer.concat([piece(index), piece(index + 1)]).subarray(start % PIECE_BYTES);
      expect(tail.subarray(0, 16)).toEqual(expected.subarray(0, Math.min(16, tail.length)));
    }
    expect((await readAll(files, 'file-large', pieces * PIECE_BYTES)).length).toBe(0);
  });

  it('keeps an empty file apart from a missing one', async () => {
    await writeFile(store.files, 'file-empty', '');
    expect((await readAll(store.files, 'file-empty')).length).toBe(0);
    expect(await store.files.size('file-empty')).toBe(0);
    expect(await readError(store.files, 'file-neverwritten')).toEqual(notCommitted);
    expect(await store.files.size('file-neverwritten')).toBeUndefined();
  });

  it('an abort leaves nothing visible, and the earlier content of the id whole', async () => {
    const { files } = store;
    const first = await files.create('file-aborted');
    await first.write(Buffer.alloc(300 * 1024, 'a'));
    await first.abort();
    await first.abort();
    expect(await readError(files, 'file-aborted')).toEqual(notCommitted);
    expect(await store.partialBytes()).toBe(0);

    await writeFile(files, 'file-aborted', 'old content\n');
    const second = await files.create('file-aborted');
    await second.write(Buffer.alloc(300 * 1024, 'b'));
    expect((await readAll(files, 'file-aborted')).toString()).toBe('old content\n');
    await second.abort();
    expect((await readAll(files, 'file-aborted')).toString()).toBe('old content\n');

    // A commit replaces the content whole.
    await writeFile(files, 'file-aborted', 'new\n');
    expect((await readAll(files, 'file-aborted')).toString()).toBe('new\n');
    await expect(second.write(Buffer.from('late'))).rejects.toThrow(/after commit or abort/);
  });

  it('a writer killed with SIGKILL mid-file leaves no complete-looking file', async () => {
    const { files } = store;
    await writeFile(files, 'file-replaced', 'the committed version\n');
    for (const fileId of ['file-killed', 'file-replaced']) {
      const child = spawnTsProcess('tests/support/file-store-writer.ts', {
        ...store.childEnvironment,
        FILE_ID: fileId,
      });
      // Killed once a few MiB are out, in the middle of its writes.
      await child.waitForLine(
        (line) => /^written (\d+)$/.test(line) && Number(line.split(' ')[1]) >= 2 ** 21,
      );
      expect(await child.stop('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    }
    expect(await store.partialBytes()).toBeGreaterThanOrEqual(2 ** 21);
    expect(await readError(files, 'file-killed')).toEqual(notCommitted);
    expect(await files.size('file-killed')).toBeUndefined();
    expect((await readAll(files, 'file-replaced')).toString()).toBe('the committed version\n');
    if (kind === 'directory') {
      // What a killed writer leaves is a dot file, never named as a file id.
      expect(
        readdirSync(join(root, 'files'))
          .filter((name) => !name.startsWith('.'))
          .sort(),
      ).not.toContain('file-killed');
    }
    // The id can be written again as if nothing had happened.
    await writeFile(files, 'file-killed', 'second try\n');
    expect((await readAll(files, 'file-killed')).toString()).toBe('second try\n');
  });

  it('deletes content; deleting a missing file is no error', async () => {
    const { files } = store;
    await writeFile(files, 'file-deleted', 'bye\n');
    await files.delete('file-deleted');
    expect(await readError(files, 'file-deleted')).toEqual(notCommitted);
    expect(await files.size('file-deleted')).toBeUndefined();
    await files.delete('file-deleted');
  });

  it('refuses ids that are not file, batch or line ids, so none names a path outside the store', async () => {
    const { files } = store;
    const invalid = expect.objectContaining({ name: 'FileStoreError', code: 'invalid_id' });
    for (const fileId of [
      '../outside',
      'file-../../x',
      'file-a/b',
      'file-',
      '',
      'file-x\0',
      `file-${'a'.repeat(65)}`,
    ]) {
      await expect(files.create(fileId)).rejects.toEqual(invalid);
      expect(await readError(files, fileId)).toEqual(invalid);
      await expect(files.size(fileId)).rejects.toEqual(invalid);
      await expect(files.delete(fileId)).rejects.toEqual(invalid);
    }
    await expect(files.spoolLine('../batch_x', 'batch_req_a', '{}')).rejects.toEqual(invalid);
    await expect(files.spoolLine('batch_x', '../../file-x', '{}')).rejects.toEqual(invalid);
    await expect(files.dropSpool('batch_x/..')).rejects.toEqual(invalid);
    await expect(files.unspool('..', [])).rejects.toEqual(invalid);
    expect(readdirSync(directory).filter((name) => name !== 'root')).toEqual([]);
    expect(new FileStoreError('invalid_id', 'x')).toBeInstanceOf(Error);
  });

  it('spools batch lines durably and gives them back in the order of the list', async () => {
    const { files } = store;
    const batchId = 'batch_spool';
    const lines = ['{"custom_id":"a","n":1}', '{"custom_id":"b","é":"✓"}', '{"custom_id":"c"}'];
    const entries = [
      await files.spoolLine(batchId, 'batch_req_a', lines[0]!),
      await files.spoolLine(batchId, 'batch_req_b', lines[1]!),
      // A line the recording script writes itself stays in the list as it is.
      lines[2]!,
    ];
    if (kind === 'redis') expect(entries).toEqual(lines);
    else expect(entries.slice(0, 2)).toEqual(['@batch_req_a', '@batch_req_b']);
    const reversed = [...entries].reverse().map((entry) => Buffer.from(entry));
    expect((await files.unspool(batchId, reversed)).map(String)).toEqual([...lines].reverse());

    // A line spooled for an item that turned out recorded already is forgotten.
    const extra = await files.spoolLine(batchId, 'batch_req_x', '{"custom_id":"a","n":2}');
    await files.discardSpooled(batchId, extra);
    if (kind === 'directory') {
      await expect(files.unspool(batchId, [Buffer.from(extra)])).rejects.toEqual(
        expect.objectContaining({ code: 'spool_missing' }),
      );
      expect(readdirSync(join(root, 'spool', batchId)).sort()).toEqual(['batch_req_a', 'batch_req_b']);
    }
    await files.dropSpool(batchId);
    await files.dropSpool(batchId);
    if (kind === 'directory') {
      expect(existsSync(join(root, 'spool', batchId))).toBe(false);
    } else {
      // Processes that disagree on MOA_FILES_DIR are told so, not handed a reference as a line.
      await expect(files.unspool(batchId, [Buffer.from('@batch_req_a')])).rejects.toThrow(/MOA_FILES_DIR/);
    }
  });
});

describe('the start-up check', () => {
  it('passes for a writable directory (made if missing) and leaves nothing behind', async () => {
    const root = mkdtempSync(join(tmpdir(), 'moa-files-check-'));
    try {
      const store = new DirectoryFileStore({ directory: join(root, 'not-yet-made') });
      await store.check();
      expect(readdirSync(join(root, 'not-yet-made', 'files'))).toEqual([]);
      expect(readdirSync(join(root, 'not-yet-made', 'spool'))).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses a MOA_FILES_DIR that is a regular file, naming it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'moa-files-check-'));
    try {
      const notADirectory = join(root, 'plain-file');
      writeFileSync(notADirectory, 'x');
      const failure = await new DirectoryFileStore({ directory: notADirectory })
        .check()
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(FileStoreError);
      expect(failure).toMatchObject({
        code: 'unwritable',
        message: expect.stringContaining('MOA_FILES_DIR'),
      });
      expect((failure as Error).message).toContain(notADirectory);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

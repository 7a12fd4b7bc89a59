import type { Socket } from 'node:net';
import { uniquePrefix } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { coalesceWrites } from './coalesced-writes.js';

/** Counts the system-call-level writes of a connection's current socket. */
function countWrites(redis: Redis): { writes: number; chunks: number } {
  const socket = redis.stream as Socket & {
    _write: (...args: unknown[]) => void;
    _writev: (chunks: unknown[], callback: unknown) => void;
  };
  const counts = { writes: 0, chunks: 0 };
  const write = socket._write.bind(socket);
  const writev = socket._writev.bind(socket);
  socket._write = (...args) => {
    counts.writes += 1;
    counts.chunks += 1;
    write(...args);
  };
  socket._writev = (chunks, callback) => {
    counts.writes += 1;
    counts.chunks += chunks.length;
    writev(chunks, callback);
  };
  return counts;
}

describe('coalesceWrites', () => {
  const prefix = uniquePrefix('coalesced-writes');
  const connections: Redis[] = [];
  afterEach(async () => {
    for (const redis of connections.splice(0)) {
      await redis.del(`${prefix}:list`, `${prefix}:a`, `${prefix}:b`);
      redis.disconnect();
    }
  });

  async function connect(coalesced: boolean): Promise<Redis> {
    const redis = new Redis(inject('redisUrl'));
    connections.push(redis);
    if (coalesced) coalesceWrites(redis);
    await redis.ping();
    return redis;
  }

  it('sends the commands of one turn in one write, in order, each with its own reply', async () => {
    const redis = await connect(true);
    const counts = countWrites(redis);
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, index) => redis.rpush(`${prefix}:list`, String(index))),
    );
    expect(replies).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await redis.lrange(`${prefix}:list`, 0, -1)).toEqual(
      Array.from({ length: 10 }, (_, index) => String(index)),
    );
    // The ten pushes left in one write; the read after them in another turn, so another write.
    expect(counts).toEqual({ writes: 2, chunks: 11 });
  });

  it('writes each command on its own without it (the cost it removes)', async () => {
    const redis = await connect(false);
    const counts = countWrites(redis);
    await Promise.all(Array.from({ length: 10 }, (_, index) => redis.rpush(`${prefix}:list`, String(index))));
    expect(counts.writes).toBe(10);
  });

  it('keeps coalescing on the socket of a reconnection', async () => {
    const redis = await connect(true);
    const first = redis.stream;
    redis.disconnect(true);
    await redis.ping();
    expect(redis.stream).not.toBe(first);
    const counts = countWrites(redis);
    await Promise.all(Array.from({ length: 5 }, (_, index) => redis.rpush(`${prefix}:list`, String(index))));
    expect(counts).toEqual({ writes: 1, chunks: 5 });
  });

  it('fails the commands of a turn whose socket closes, like any command in flight', async () => {
    const redis = new Redis(inject('redisUrl'), {
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    });
    connections.push(redis);
    coalesceWrites(redis);
    await redis.ping();
    const pending = Promise.allSettled([redis.set(`${prefix}:a`, '1'), redis.set(`${prefix}:b`, '2')]);
    (redis.stream as Socket).destroy();
    const outcomes = await pending;
    for (const outcome of outcomes) expect(outcome.status).toBe('rejected');
    await redis.ping();
  });
});

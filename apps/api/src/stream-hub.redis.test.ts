import { uniquePrefix, until } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { apiRedisOptions } from './redis-connection.js';
import {
  compareStreamIds,
  createStreamHub,
  streamIdAfter,
  type StreamEntry,
  type StreamHub,
} from './stream-hub.js';

const url = inject('redisUrl');
const prefix = uniquePrefix('stream-hub');
/** Connections of the hubs under test: each test names its own. */
const connections: Redis[] = [];
const admin = new Redis(url, { maxRetriesPerRequest: null });

/** A connection with the API's own options (command timeout, no offline queue), named. */
function connection(name: string): Redis {
  const redis = new Redis(url, { ...apiRedisOptions(), connectionName: name });
  redis.on('error', () => undefined);
  connections.push(redis);
  return redis;
}

/** Connections whose name starts with `name`. */
async function namedConnections(name: string): Promise<string[]> {
  const list = (await admin.client('LIST')) as string;
  return list.split('\n').filter((line) => line.includes(`name=${name} `));
}

/** A subscriber that records every entry it is given. */
function recorder() {
  const entries: StreamEntry[] = [];
  return {
    entries,
    values: () => entries.map((entry) => entry.fields[1]),
    handlers: { onEntries: (batch: StreamEntry[]) => entries.push(...batch) },
  };
}

/** Appends and notifies, as `publishEvent` does. */
async function add(key: string, value: string): Promise<string> {
  const [[, id]] = (await admin.pipeline().xadd(key, '*', 'event', value).publish(key, '').exec()) as [
    [unknown, string],
  ];
  return id;
}

let hub: StreamHub | undefined;
afterEach(() => {
  hub?.close();
  hub = undefined;
});
afterAll(async () => {
  for (const redis of connections) redis.disconnect();
  const keys = await admin.keys(`${prefix}:*`);
  if (keys.length > 0) await admin.del(...keys);
  admin.disconnect();
});

describe('stream ids', () => {
  it('orders ids numerically and makes the next one', () => {
    expect(compareStreamIds('0', '1-0')).toBeLessThan(0);
    expect(compareStreamIds('10-0', '9-5')).toBeGreaterThan(0);
    expect(compareStreamIds('5-10', '5-9')).toBeGreaterThan(0);
    expect(compareStreamIds('5-1', '5-1')).toBe(0);
    expect(streamIdAfter('0')).toBe('0-1');
    expect(streamIdAfter('1764000000000-9')).toBe('1764000000000-10');
  });
});

describe('one reader for every followed stream', () => {
  it('serves 50 streams over one connection, each subscriber its own entries in order', async () => {
    hub = createStreamHub(connection('hub-many'));
    const keys = Array.from({ length: 50 }, (_, index) => `${prefix}:many:${index}`);
    const recorders = keys.map(() => recorder());
    keys.forEach((key, index) => hub!.subscribe(key, '0', recorders[index]!.handlers));
    for (let round = 0; round < 3; round += 1)
      await Promise.all(keys.map((key, index) => add(key, `${index}:${round}`)));
    await until(() => recorders.every((entry) => entry.entries.length === 3), 5000);
    recorders.forEach((entry, index) =>
      expect(entry.values()).toEqual([`${index}:0`, `${index}:1`, `${index}:2`]),
    );
    expect(await namedConnections('hub-many:follow')).toHaveLength(1);
    expect(hub.stats()).toMatchObject({ streams: 50, subscribers: 50, connected: true });
  });

  it('replays the history to a late subscriber without repeating it to the first', async () => {
    hub = createStreamHub(connection('hub-late'));
    const key = `${prefix}:late`;
    const first = recorder();
    hub.subscribe(key, '0', first.handlers);
    await add(key, 'a');
    await add(key, 'b');
    await until(() => first.entries.length === 2, 5000);
    const late = recorder();
    hub.subscribe(key, '0', late.handlers);
    await until(() => late.entries.length === 2, 5000);
    await add(key, 'c');
    await until(() => late.entries.length === 3 && first.entries.length === 3, 5000);
    expect(first.values()).toEqual(['a', 'b', 'c']);
    expect(late.values()).toEqual(['a', 'b', 'c']);
  });

  it('resumes after a given id', async () => {
    hub = createStreamHub(connection('hub-resume'));
    const key = `${prefix}:resume`;
    await add(key, 'a');
    const second = await add(key, 'b');
    await add(key, 'c');
    const resumed = recorder();
    hub.subscribe(key, second, resumed.handlers);
    await until(() => resumed.entries.length === 1, 5000);
    expect(resumed.values()).toEqual(['c']);
  });

  it('reads a stream written without a notification at the next sweep', async () => {
    hub = createStreamHub(connection('hub-sweep'), { sweepMs: 200 });
    const key = `${prefix}:silent`;
    const silent = recorder();
    hub.subscribe(key, '0', silent.handlers);
    await until(async () => (await namedConnections('hub-sweep:follow')).length === 1, 5000);
    await admin.xadd(key, '*', 'event', 'unannounced');
    await until(() => silent.entries.length === 1, 20_000);
    expect(silent.values()).toEqual(['unannounced']);
  });

  it('catches up on what was written while its connection was down, from each stream’s position', async () => {
    // No sweep within the test: only the read after re-subscribing can deliver what was missed.
    hub = createStreamHub(connection('hub-kill'), { sweepMs: 600_000 });
    const keys = [`${prefix}:kill:a`, `${prefix}:kill:b`];
    const recorders = keys.map(() => recorder());
    keys.forEach((key, index) => hub!.subscribe(key, '0', recorders[index]!.handlers));
    await Promise.all(keys.map((key) => add(key, '1')));
    await until(() => recorders.every((entry) => entry.entries.length === 1), 5000);
    // The notification connection, then both it and the one reads go on
    // (only these: other suites share this Redis).
    for (const victims of [['hub-kill:follow'], ['hub-kill:follow', 'hub-kill']]) {
      for (const name of victims) {
        await until(async () => (await namedConnections(name)).length === 1, 10_000);
        const [line] = await namedConnections(name);
        const id = /\bid=(\d+)/.exec(line!)![1]!;
        expect(await admin.client('KILL', 'ID', id)).toBe(1);
      }
      await Promise.all(keys.map((key) => add(key, `${victims.length + 1}`)));
    }
    await until(() => recorders.every((entry) => entry.entries.length === 3), 10_000);
    for (const entry of recorders) expect(entry.values()).toEqual(['1', '2', '3']);
    expect(await namedConnections('hub-kill:follow')).toHaveLength(1);
  });

  it('fails only the subscribers of a key that is not a stream', async () => {
    hub = createStreamHub(connection('hub-wrongtype'));
    const bad = `${prefix}:not-a-stream`;
    await admin.set(bad, 'x');
    const errors: Error[] = [];
    hub.subscribe(bad, '0', { onEntries: () => undefined, onError: (error) => errors.push(error) });
    const good = recorder();
    hub.subscribe(`${prefix}:good`, '0', good.handlers);
    await add(`${prefix}:good`, 'ok');
    await until(() => errors.length === 1 && good.entries.length === 1, 10_000);
    expect(errors[0]!.message).toContain('not a stream');
  });

  it('closes its reader with the connection it was made from', async () => {
    const parent = connection('hub-parent');
    hub = createStreamHub(parent);
    const errors: Error[] = [];
    hub.subscribe(`${prefix}:parent`, '0', {
      onEntries: () => undefined,
      onError: (error) => errors.push(error),
    });
    await until(async () => (await namedConnections('hub-parent:follow')).length === 1, 5000);
    parent.disconnect();
    await until(async () => (await namedConnections('hub-parent:follow')).length === 0, 5000);
    expect(errors).toHaveLength(1);
  });
});

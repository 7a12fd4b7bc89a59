import type { Redis } from 'ioredis';

/** One Redis stream entry: its id and its flat field/value list. */
export interface StreamEntry {
  id: string;
  fields: string[];
}

/** What a subscriber of the hub is told. */
export interface StreamHandlers {
  /** New entries of the stream, in order, each after the last one delivered (never twice). */
  onEntries(entries: StreamEntry[]): void;
  /** The stream cannot be followed (not a stream, or the hub closed); nothing more comes. */
  onError?(error: Error): void;
}

/** A subscription to one stream; `close` is idempotent. */
export interface StreamSubscription {
  close(): void;
}

/** Options of {@link createStreamHub}. */
export interface StreamHubOptions {
  /**
   * Every followed stream is also read this often without a notification:
   * the safety net for a notification lost (a reconnect) or never sent (a
   * writer that does not publish).
   * @defaultValue 5000
   */
  sweepMs?: number;
  /** Entries read per stream per read. @defaultValue 500 */
  count?: number;
  /** Streams per `XREAD`. @defaultValue 1000 */
  keysPerRead?: number;
  /** Name of the notification connection (`CLIENT SETNAME`). @defaultValue `<parent name>:follow` or `moa-api:follow` */
  connectionName?: string;
}

/** Numbers of the hub, for tests and metrics. */
export interface StreamHubStats {
  streams: number;
  subscribers: number;
  /** `XREAD` commands issued so far. */
  reads: number;
  /** Whether the notification connection exists (it is made on the first subscription). */
  connected: boolean;
}

/**
 * One reader per API process for every followed Redis stream.
 *
 * A writer appends an event with `XADD` and then `PUBLISH`es an empty
 * message on the channel named like the stream key (`publishEvent` does
 * both, in that order, on one connection). The hub holds one connection
 * of its own, subscribed to the channel of each followed stream; a message
 * marks its stream dirty, and the dirty streams are read together with one
 * non-blocking `XREAD` on the normal connection, each from the lowest
 * position its subscribers have reached. A stream is read once right after
 * its channel is subscribed (the catch-up: what was written before), again
 * whenever the notification connection comes back (messages sent while it
 * was away are lost), and every `sweepMs` in any case. So Redis connections
 * per process stay constant however many clients follow, and the work per
 * event does not grow with the number of followed streams.
 */
export interface StreamHub {
  /** Follows `key` from after `afterId` (`0` for its start). */
  subscribe(key: string, afterId: string, handlers: StreamHandlers): StreamSubscription;
  stats(): StreamHubStats;
  /** Stops reading and closes the notification connection; current subscribers get `onError`. */
  close(): void;
}

const STREAM_ID = /^(\d{1,20})-(\d{1,20})$/;

/** Whether `value` is a complete stream entry id (`<ms>-<seq>`). */
export function isStreamId(value: string): boolean {
  return STREAM_ID.test(value);
}

function idParts(id: string): [bigint, bigint] {
  const match = STREAM_ID.exec(id);
  if (match) return [BigInt(match[1]!), BigInt(match[2]!)];
  // '0' (the start) or a bare millisecond part.
  return [/^\d{1,20}$/.test(id) ? BigInt(id) : 0n, 0n];
}

/** Orders two stream entry ids: negative, zero or positive. `0` is the start. */
export function compareStreamIds(left: string, right: string): number {
  if (left === right) return 0;
  const [leftMs, leftSeq] = idParts(left);
  const [rightMs, rightSeq] = idParts(right);
  if (leftMs !== rightMs) return leftMs < rightMs ? -1 : 1;
  if (leftSeq !== rightSeq) return leftSeq < rightSeq ? -1 : 1;
  return 0;
}

/** The smallest id after `id` (`0` → `0-1`): the id of an event made up after the last real one. */
export function streamIdAfter(id: string): string {
  const [ms, seq] = idParts(id);
  return `${ms}-${seq + 1n}`;
}

interface Subscriber {
  /** The id of the last entry delivered (or the position it asked to start after). */
  position: string;
  handlers: StreamHandlers;
  closed: boolean;
}

type XreadReply = [key: string, entries: [id: string, fields: string[]][]][] | null;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Creates a hub over `redis`: reads go on it, notifications come on one
 * duplicate of it.
 */
export function createStreamHub(redis: Redis, options: StreamHubOptions = {}): StreamHub {
  const sweepMs = options.sweepMs ?? 5000;
  const count = options.count ?? 500;
  const keysPerRead = options.keysPerRead ?? 1000;
  const parentName = redis.options.connectionName;
  const connectionName = options.connectionName ?? `${parentName || 'moa-api'}:follow`;

  const streams = new Map<string, Set<Subscriber>>();
  /** Streams to read at the next flush. */
  const dirty = new Set<string>();
  /** Channels subscribed on the current notification connection, and those being subscribed. */
  const subscribed = new Set<string>();
  const subscribing = new Set<string>();
  let notifications: Redis | undefined;
  let reading = false;
  let flushScheduled = false;
  let syncScheduled = false;
  let failures = 0;
  let closed = false;
  let reads = 0;
  let sweepTimer: NodeJS.Timeout | undefined;

  function connectNotifications(): Redis {
    if (notifications) return notifications;
    const connection = redis.duplicate({
      connectionName,
      // Channels are subscribed again by the hub itself on every new
      // connection, and each stream read once that is done.
      autoResubscribe: false,
      autoResendUnfulfilledCommands: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      lazyConnect: false,
    });
    // The main connection already reports Redis trouble; this one stays quiet.
    connection.on('error', () => undefined);
    connection.on('close', () => {
      subscribed.clear();
      subscribing.clear();
    });
    connection.on('ready', () => scheduleSync());
    connection.on('message', (channel: string) => {
      if (!streams.has(channel)) return;
      dirty.add(channel);
      scheduleFlush();
    });
    notifications = connection;
    sweepTimer = setInterval(() => {
      for (const key of streams.keys()) dirty.add(key);
      scheduleFlush();
    }, sweepMs);
    sweepTimer.unref();
    return connection;
  }

  function lowestPosition(subscribers: Set<Subscriber>): string | undefined {
    let lowest: string | undefined;
    for (const subscriber of subscribers) {
      if (lowest === undefined || compareStreamIds(subscriber.position, lowest) < 0)
        lowest = subscriber.position;
    }
    return lowest;
  }

  function deliver(reply: NonNullable<XreadReply>, starts: Map<string, string>): void {
    for (const [key, raw] of reply) {
      const subscribers = streams.get(key);
      const start = starts.get(key);
      if (!subscribers || start === undefined || raw.length === 0) continue;
      // More than one read's worth: the rest at the next flush.
      if (raw.length >= count) dirty.add(key);
      const entries = raw.map(([id, fields]) => ({ id, fields }));
      for (const subscriber of [...subscribers]) {
        // One that joined behind this read's start would get a gap: the next read starts at it.
        if (subscriber.closed || compareStreamIds(subscriber.position, start) < 0) continue;
        const fresh = entries.filter((entry) => compareStreamIds(entry.id, subscriber.position) > 0);
        if (fresh.length === 0) continue;
        subscriber.position = fresh[fresh.length - 1]!.id;
        try {
          subscriber.handlers.onEntries(fresh);
        } catch {
          // A subscriber's fault must not stop the others.
        }
      }
    }
  }

  function fail(key: string, error: Error): void {
    const subscribers = streams.get(key);
    streams.delete(key);
    dirty.delete(key);
    scheduleSync();
    for (const subscriber of subscribers ?? []) {
      subscriber.closed = true;
      try {
        subscriber.handlers.onError?.(error);
      } catch {
        // ignored, as above
      }
    }
  }

  /** After a WRONGTYPE reply: drops the keys that are not streams, so one bad key cannot stall every follower. */
  async function dropWrongTypes(keys: string[]): Promise<void> {
    const pipeline = redis.pipeline();
    for (const key of keys) pipeline.type(key);
    const types = (await pipeline.exec()) ?? [];
    keys.forEach((key, index) => {
      const type = types[index]?.[1];
      if (typeof type === 'string' && type !== 'stream' && type !== 'none')
        fail(key, new Error(`${key} is not a stream (${type})`));
    });
  }

  /** Reads every dirty stream (in chunks), one read at a time; notifications meanwhile wait for the next. */
  async function flush(): Promise<void> {
    flushScheduled = false;
    if (reading || closed || dirty.size === 0) return;
    reading = true;
    const starts = new Map<string, string>();
    for (const key of dirty) {
      const subscribers = streams.get(key);
      const lowest = subscribers && lowestPosition(subscribers);
      if (lowest !== undefined) starts.set(key, lowest);
      if (starts.size >= keysPerRead) break;
    }
    for (const key of starts.keys()) dirty.delete(key);
    if (starts.size === 0) dirty.clear();
    try {
      if (starts.size > 0) {
        reads += 1;
        const reply = (await redis.xread(
          'COUNT',
          count,
          'STREAMS',
          ...starts.keys(),
          ...starts.values(),
        )) as XreadReply;
        failures = 0;
        if (reply) deliver(reply, starts);
      }
    } catch (error) {
      for (const key of starts.keys()) if (streams.has(key)) dirty.add(key);
      failures += 1;
      const message = error instanceof Error ? error.message : String(error);
      if (message.includes('WRONGTYPE')) await dropWrongTypes([...starts.keys()]).catch(() => undefined);
      // Redis trouble: read again after a pause; every stream resumes from its position.
      await sleep(Math.min(50 * 2 ** Math.min(failures, 6), 2000));
    } finally {
      reading = false;
      if (dirty.size > 0) scheduleFlush();
    }
  }

  function scheduleFlush(): void {
    if (flushScheduled || reading || closed) return;
    flushScheduled = true;
    // Notifications of one I/O turn are read together.
    setImmediate(() => void flush());
  }

  /** Subscribes the channels of new streams (then reads them) and unsubscribes those of streams nobody follows. */
  async function syncChannels(): Promise<void> {
    syncScheduled = false;
    const connection = notifications;
    if (!connection || closed || connection.status !== 'ready') return;
    const toAdd = [...streams.keys()].filter((key) => !subscribed.has(key) && !subscribing.has(key));
    const toRemove = [...subscribed].filter((key) => !streams.has(key));
    for (const key of toRemove) subscribed.delete(key);
    const commands: Promise<unknown>[] = [];
    if (toRemove.length > 0) commands.push(connection.unsubscribe(...toRemove).catch(() => undefined));
    for (let start = 0; start < toAdd.length; start += keysPerRead) {
      const chunk = toAdd.slice(start, start + keysPerRead);
      for (const key of chunk) subscribing.add(key);
      commands.push(
        connection.subscribe(...chunk).then(
          () => {
            for (const key of chunk) {
              if (!subscribing.delete(key)) continue; // the connection was lost meanwhile
              subscribed.add(key);
              // The catch-up: what was written before the channel was listened to.
              if (streams.has(key)) dirty.add(key);
              else scheduleSync(); // nobody follows it any more
            }
            scheduleFlush();
          },
          () => {
            for (const key of chunk) subscribing.delete(key);
          },
        ),
      );
    }
    await Promise.all(commands);
  }

  function scheduleSync(): void {
    if (syncScheduled || closed) return;
    syncScheduled = true;
    setImmediate(() => void syncChannels());
  }

  // The hub lives as long as the connection it was made from.
  redis.once('end', () => hub.close());

  const hub: StreamHub = {
    subscribe(key, afterId, handlers) {
      if (closed) throw new Error('the stream hub is closed');
      connectNotifications();
      const subscriber: Subscriber = { position: afterId, handlers, closed: false };
      let subscribers = streams.get(key);
      if (!subscribers) {
        subscribers = new Set();
        streams.set(key, subscribers);
      }
      subscribers.add(subscriber);
      // Read at once (history does not wait for the channel), and again once the channel is listened to.
      dirty.add(key);
      scheduleFlush();
      scheduleSync();
      return {
        close() {
          if (subscriber.closed) return;
          subscriber.closed = true;
          const current = streams.get(key);
          current?.delete(subscriber);
          if (current && current.size === 0) {
            streams.delete(key);
            dirty.delete(key);
            scheduleSync();
          }
        },
      };
    },
    stats() {
      let subscribers = 0;
      for (const set of streams.values()) subscribers += set.size;
      return { streams: streams.size, subscribers, reads, connected: notifications !== undefined };
    },
    close() {
      if (closed) return;
      closed = true;
      clearInterval(sweepTimer);
      notifications?.disconnect();
      for (const key of [...streams.keys()]) fail(key, new Error('the stream hub is closed'));
    },
  };
  return hub;
}

const hubs = new WeakMap<Redis, StreamHub>();

/**
 * The process's hub for a connection: every follower of one API process
 * (one main connection) shares it. Made on first use; closed when that
 * connection ends.
 */
export function streamHubFor(redis: Redis): StreamHub {
  let hub = hubs.get(redis);
  if (!hub) {
    hub = createStreamHub(redis);
    hubs.set(redis, hub);
    redis.once('end', () => hubs.delete(redis));
  }
  return hub;
}

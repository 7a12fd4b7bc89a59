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
   * The longest one `XREAD BLOCK` waits. An interrupt normally re-issues
   * the read at once when the set of streams changes; this bounds the wait
   * should one be missed.
   * @defaultValue 5000
   */
  blockMs?: number;
  /** Entries read per stream per round. @defaultValue 500 */
  count?: number;
  /**
   * How long a change to the set of followed streams may wait before the
   * blocking read is interrupted, so that followers arriving together cost
   * one re-issued read rather than one each.
   * @defaultValue 5
   */
  coalesceMs?: number;
  /** Name of the reader connection (`CLIENT SETNAME`). @defaultValue `<parent name>:follow` or `moa-api:follow` */
  connectionName?: string;
}

/** Numbers of the hub, for tests and metrics. */
export interface StreamHubStats {
  streams: number;
  subscribers: number;
  /** `XREAD` commands issued so far. */
  reads: number;
  /** Whether the reader connection exists (it is made on the first subscription). */
  connected: boolean;
}

/**
 * One reader per API process for every followed Redis stream. It holds one
 * connection of its own and keeps one `XREAD BLOCK` in flight over all
 * followed streams, each from the lowest position any of its subscribers
 * has reached; when a stream is added (or a subscriber needs an earlier
 * part of one), the read is interrupted with `CLIENT UNBLOCK` from the
 * normal connection and re-issued with the new set. So Redis connections
 * per process stay constant however many clients follow.
 */
export interface StreamHub {
  /** Follows `key` from after `afterId` (`0` for its start). */
  subscribe(key: string, afterId: string, handlers: StreamHandlers): StreamSubscription;
  stats(): StreamHubStats;
  /** Stops reading and closes the reader; current subscribers get `onError`. */
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

interface Subscriber {
  /** The id of the last entry delivered (or the position it asked to start after). */
  position: string;
  handlers: StreamHandlers;
  closed: boolean;
}

/** A blocking read in flight: the position each stream is read from. */
interface Read {
  starts: Map<string, string>;
}

type XreadReply = [key: string, entries: [id: string, fields: string[]][]][] | null;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Creates a hub over `redis` (used for `CLIENT UNBLOCK`; the reader is a duplicate of it). */
export function createStreamHub(redis: Redis, options: StreamHubOptions = {}): StreamHub {
  const blockMs = options.blockMs ?? 5000;
  const count = options.count ?? 500;
  const coalesceMs = options.coalesceMs ?? 5;
  const parentName = redis.options.connectionName;
  const connectionName = options.connectionName ?? `${parentName || 'moa-api'}:follow`;

  const streams = new Map<string, Set<Subscriber>>();
  let reader: Redis | undefined;
  let readerId: number | undefined;
  let inFlight: Read | undefined;
  let wake: (() => void) | undefined;
  let running = false;
  let closed = false;
  let reads = 0;
  let interruptTimer: NodeJS.Timeout | undefined;
  let interruptWanted = false;
  let interrupting = false;

  function connectReader(): Redis {
    if (reader) return reader;
    reader = redis.duplicate({
      connectionName,
      // A lost connection fails the read at once (the loop re-issues it from
      // each stream's position on the next connection); nothing is queued or
      // resent behind a blocking command.
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      // The read's own deadline is the watchdog below, not a command timeout
      // shorter than the block (options are copied from the parent).
      commandTimeout: undefined,
      blockingTimeout: undefined,
      lazyConnect: false,
    });
    // The main connection already reports Redis trouble; this one stays quiet.
    reader.on('error', () => undefined);
    reader.on('close', () => {
      readerId = undefined;
    });
    return reader;
  }

  async function whenReady(connection: Redis): Promise<void> {
    if (connection.status === 'ready') return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        connection.off('ready', done);
        resolve();
      };
      const timer = setTimeout(done, 1000);
      connection.on('ready', done);
    });
    if ((connection.status as string) !== 'ready') throw new Error('stream reader not connected');
  }

  function lowestPosition(subscribers: Set<Subscriber>): string | undefined {
    let lowest: string | undefined;
    for (const subscriber of subscribers) {
      if (lowest === undefined || compareStreamIds(subscriber.position, lowest) < 0)
        lowest = subscriber.position;
    }
    return lowest;
  }

  function deliver(reply: NonNullable<XreadReply>, read: Read): void {
    for (const [key, raw] of reply) {
      const subscribers = streams.get(key);
      const start = read.starts.get(key);
      if (!subscribers || start === undefined || raw.length === 0) continue;
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

  async function readOnce(connection: Redis, read: Read): Promise<XreadReply> {
    const keys = [...read.starts.keys()];
    const ids = [...read.starts.values()];
    // A Redis that stops answering (paused, or a half-open socket) must not hold
    // every follower: past the block plus a grace, the connection is replaced.
    const watchdog = setTimeout(() => connection.disconnect(true), blockMs + 5000);
    try {
      reads += 1;
      return (await connection.xread(
        'COUNT',
        count,
        'BLOCK',
        blockMs,
        'STREAMS',
        ...keys,
        ...ids,
      )) as XreadReply;
    } finally {
      clearTimeout(watchdog);
    }
  }

  async function loop(): Promise<void> {
    let failures = 0;
    while (!closed) {
      if (streams.size === 0) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      const connection = connectReader();
      let read: Read | undefined;
      try {
        await whenReady(connection);
        if (readerId === undefined) readerId = Number(await connection.client('ID'));
        if (closed) break;
        read = { starts: new Map() };
        for (const [key, subscribers] of streams) {
          const lowest = lowestPosition(subscribers);
          if (lowest !== undefined) read.starts.set(key, lowest);
        }
        if (read.starts.size === 0) continue;
        // Set in the same tick as the command is sent: a subscriber arriving
        // after this sees the read and interrupts it if the read misses it.
        inFlight = read;
        const reply = await readOnce(connection, read);
        inFlight = undefined;
        failures = 0;
        if (reply) deliver(reply, read);
      } catch (error) {
        inFlight = undefined;
        if (closed) break;
        failures += 1;
        const message = error instanceof Error ? error.message : String(error);
        if (message.includes('WRONGTYPE') && read)
          await dropWrongTypes([...read.starts.keys()]).catch(() => undefined);
        // Reconnects are ioredis's; the next read resumes from every stream's position.
        await sleep(Math.min(50 * 2 ** Math.min(failures, 6), 2000));
      }
    }
    running = false;
  }

  /** Interrupts the blocking read until it has ended, so the next one includes the new streams. */
  async function interrupt(): Promise<void> {
    if (interrupting) return;
    interrupting = true;
    try {
      while (interruptWanted && !closed) {
        interruptWanted = false;
        const target = inFlight;
        // Sent on another connection, CLIENT UNBLOCK may reach Redis before the
        // read does: it then answers 0, and is tried again while that read is in flight.
        for (let attempt = 0; attempt < 40 && inFlight === target && target && !closed; attempt += 1) {
          const id = readerId;
          if (id === undefined) break;
          const unblocked = await redis.client('UNBLOCK', id).catch(() => 0);
          if (unblocked === 1) break;
          await sleep(Math.min(2 ** attempt, 25));
        }
      }
    } finally {
      interrupting = false;
    }
  }

  function scheduleInterrupt(): void {
    interruptWanted = true;
    if (interruptTimer || interrupting) return;
    interruptTimer = setTimeout(() => {
      interruptTimer = undefined;
      void interrupt();
    }, coalesceMs);
  }

  /** Makes sure a read covers `key` from `afterId`. */
  function needsRead(key: string, afterId: string): void {
    if (!running) {
      running = true;
      void loop();
      return;
    }
    if (wake) {
      wake();
      return;
    }
    // Between reads the loop builds its next read from the current set.
    if (!inFlight) return;
    const start = inFlight.starts.get(key);
    if (start !== undefined && compareStreamIds(afterId, start) >= 0) return;
    scheduleInterrupt();
  }

  // The hub lives as long as the connection it was made from.
  redis.once('end', () => hub.close());

  const hub: StreamHub = {
    subscribe(key, afterId, handlers) {
      if (closed) throw new Error('the stream hub is closed');
      const subscriber: Subscriber = { position: afterId, handlers, closed: false };
      let subscribers = streams.get(key);
      if (!subscribers) {
        subscribers = new Set();
        streams.set(key, subscribers);
      }
      subscribers.add(subscriber);
      needsRead(key, afterId);
      return {
        close() {
          if (subscriber.closed) return;
          subscriber.closed = true;
          const current = streams.get(key);
          current?.delete(subscriber);
          // A stream nobody follows is left out of the next read; the one in
          // flight is not interrupted for it (its entries are dropped).
          if (current && current.size === 0) streams.delete(key);
        },
      };
    },
    stats() {
      let subscribers = 0;
      for (const set of streams.values()) subscribers += set.size;
      return { streams: streams.size, subscribers, reads, connected: reader !== undefined };
    },
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(interruptTimer);
      wake?.();
      reader?.disconnect();
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

export function streamIdAfter(id: string): string {
  const match = /^(\d+)-(\d+)$/.exec(id);
  return match ? `${match[1]}-${BigInt(match[2]!) + 1n}` : '0-1';
}

import { once } from 'node:events';
import { Agent, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '@moa-queue/api';
import { createMoaQueues, eventsKey, type MoaQueues } from '@moa-queue/contract';
import { until } from '@moa-queue/test-support';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, WEBHOOK_SECRET, type MoaStack } from './support/moa-stack.js';

const MESSAGES = [{ role: 'user', content: 'Write a haiku about queues.' }];
const FULL_STORY = [
  'layer_started1',
  'layer_finished1',
  'layer_started2',
  'layer_finished2',
  'layer_started3',
  'layer_finished3',
  'done',
];
/** The in-process API's connections carry this name, so `CLIENT LIST` can count them. */
const API_CONNECTION = `moa-api-followers-${process.pid}`;
const FOLLOWERS = 500;

/** One Server-Sent Event as a client parses it. */
interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  retry?: number;
}

/** A raw SSE connection on its own socket: events as they arrive. */
interface SseConnection {
  status: number;
  headers: IncomingHttpHeaders;
  /** Every block received so far, `retry:` and events alike (comments left out). */
  blocks: SseEvent[];
  /** Resolves when the server ends the response (or the socket closes). */
  ended: Promise<void>;
  close(): void;
}

/** Never pools: each follower is its own TCP connection, as separate clients would be. */
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });

function parseBlock(block: string): SseEvent | undefined {
  const event: SseEvent = {};
  let any = false;
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') event.id = value;
    else if (field === 'event') event.event = value;
    else if (field === 'data') event.data = event.data === undefined ? value : `${event.data}\n${value}`;
    else if (field === 'retry') event.retry = Number(value);
    else continue;
    any = true;
  }
  return any ? event : undefined;
}

function openSse(url: string, headers: Record<string, string> = {}): Promise<SseConnection> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, { agent, headers: { accept: 'text/event-stream', ...headers } });
    outgoing.on('error', reject);
    outgoing.on('response', (response) => {
      const blocks: SseEvent[] = [];
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const parsed = parseBlock(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (parsed) blocks.push(parsed);
        }
      });
      const ended = new Promise<void>((done) => {
        response.on('end', done);
        response.on('close', done);
        response.on('error', done);
      });
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        blocks,
        ended,
        close: () => outgoing.destroy(),
      });
    });
    outgoing.end();
  });
}

const eventsOf = (connection: SseConnection) => connection.blocks.filter((block) => block.data !== undefined);
const storyOf = (events: SseEvent[]) =>
  events.map((event) => {
    const data = JSON.parse(event.data!) as { type: string; layer?: number };
    return `${data.type}${data.layer ?? ''}`;
  });

/**
 * What an `EventSource` does (WHATWG HTML §9.2): reconnect when the stream
 * ends, after the `retry:` delay, sending the last event id seen; stop on a
 * response that is not 200 (204 is how a server says "nothing more").
 */
async function eventSourceSession(url: string, maxOpens = 5) {
  let lastEventId: string | undefined;
  const opens: number[] = [];
  const events: SseEvent[] = [];
  for (let open = 0; open < maxOpens; open += 1) {
    const connection = await openSse(url, lastEventId ? { 'last-event-id': lastEventId } : {});
    opens.push(connection.status);
    if (connection.status !== 200) break;
    await connection.ended;
    for (const event of eventsOf(connection)) {
      events.push(event);
      if (event.id !== undefined) lastEventId = event.id;
    }
    // A short stand-in for the retry delay: the test checks the order of things, not the wait.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { opens, events };
}

describe('job event streams: ids, resume, one reader for every follower', () => {
  let stack: MoaStack;
  let baseUrl: string;
  let apiRedis: Redis;
  let apiQueues: MoaQueues;
  let server: Server | undefined;
  const admin = new Redis(inject('redisUrl'), { maxRetriesPerRequest: null });

  async function apiConnections(): Promise<number> {
    const list = (await admin.client('LIST')) as string;
    return list.split('\n').filter((line) => line.includes(`name=${API_CONNECTION}`)).length;
  }

  beforeAll(async () => {
    const redisUrl = inject('redisUrl');
    apiRedis = new Redis(redisUrl, { maxRetriesPerRequest: null, connectionName: API_CONNECTION });
    apiRedis.on('error', () => undefined);
    stack = await startMoaStack({
      name: 'sse-followers',
      redisUrl,
      workers: 2,
      // 500 followers of one tenant: room for them under maxStreams.
      configure: (file) => ({ ...file, quotas: { maxStreams: 2 * FOLLOWERS } }),
    });
    // The API under test runs on connections of its own, named, over the stack's prefix.
    apiQueues = createMoaQueues({
      connection: apiRedis,
      prefix: stack.prefix,
      providers: Object.keys(stack.config.providers),
      onError: () => undefined,
    });
    server = await startApi(stack, apiRedis, apiQueues);
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    agent.destroy();
    server?.closeAllConnections();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await stack?.stop();
    await apiQueues?.close();
    apiRedis?.disconnect();
    admin.disconnect();
  });

  it('starts with retry:, gives every event its stream id, and answers 204 to a reconnect after done', async () => {
    const job = await stack.submit({ preset: 'three', messages: MESSAGES });
    const first = await openSse(`${baseUrl}/v1/jobs/${job.id}/events`);
    await first.ended;
    expect(first.status).toBe(200);
    expect(first.blocks[0]).toEqual({ retry: 3000 });
    const events = eventsOf(first);
    expect(storyOf(events)).toEqual(FULL_STORY);
    const ids = events.map((event) => event.id!);
    for (const id of ids) expect(id).toMatch(/^\d+-\d+$/);
    expect(new Set(ids).size).toBe(ids.length);
    // The ids are the Redis stream's own.
    const entries = await admin.xrange(eventsKey(stack.prefix, job.id), '-', '+');
    expect(ids).toEqual(entries.map(([id]) => id));

    const afterDone = await openSse(`${baseUrl}/v1/jobs/${job.id}/events`, { 'last-event-id': ids.at(-1)! });
    await afterDone.ended;
    expect(afterDone.status).toBe(204);
    expect(afterDone.blocks).toEqual([]);

    // Resuming mid-way sends only what follows.
    const resumed = await openSse(`${baseUrl}/v1/jobs/${job.id}/events`, { 'last-event-id': ids[1]! });
    await resumed.ended;
    expect(storyOf(eventsOf(resumed))).toEqual(FULL_STORY.slice(2));
    expect(eventsOf(resumed).map((event) => event.id)).toEqual(ids.slice(2));

    // A new subscriber (no Last-Event-ID) still gets the whole story.
    const late = await openSse(`${baseUrl}/v1/jobs/${job.id}/events`);
    await late.ended;
    expect(storyOf(eventsOf(late))).toEqual(FULL_STORY);

    const bad = await openSse(`${baseUrl}/v1/jobs/${job.id}/events`, { 'last-event-id': 'nonsense' });
    await bad.ended;
    expect(bad.status).toBe(400);
  });

  it('an EventSource-style client opens twice and sees done once: the reconnect after done is a 204', async () => {
    const job = await stack.submit({ preset: 'three', messages: MESSAGES });
    const session = await eventSourceSession(`${baseUrl}/v1/jobs/${job.id}/events`);
    expect(session.opens).toEqual([200, 204]);
    expect(storyOf(session.events)).toEqual(FULL_STORY);
  });

  it('a client that drops mid-job resumes where it left off, without duplicates', async () => {
    stack.fake.setBehaviour('aggregator', { hold: true });
    try {
      const job = await stack.submit({ preset: 'three', messages: MESSAGES });
      const url = `${baseUrl}/v1/jobs/${job.id}/events`;
      const first = await openSse(url);
      await until(() => storyOf(eventsOf(first)).includes('layer_started3'), 30_000);
      first.close();
      const seen = eventsOf(first);
      expect(storyOf(seen)).toEqual(FULL_STORY.slice(0, 5));

      const second = await openSse(url, { 'last-event-id': seen.at(-1)!.id! });
      expect(second.status).toBe(200);
      stack.fake.setBehaviour('aggregator', undefined);
      stack.fake.release('aggregator');
      await second.ended;
      const all = [...seen, ...eventsOf(second)];
      expect(storyOf(all)).toEqual(FULL_STORY);
      expect(new Set(all.map((event) => event.id)).size).toBe(all.length);

      const third = await openSse(url, { 'last-event-id': all.at(-1)!.id! });
      await third.ended;
      expect(third.status).toBe(204);
    } finally {
      stack.fake.setBehaviour('aggregator', undefined);
      stack.fake.release();
    }
  });

  it('a finished job whose stream has expired: done from its state, with an id; a reconnect after it is a 204', async () => {
    const job = await stack.submit({ preset: 'three', messages: MESSAGES });
    await stack.waitFor(job.id);
    await admin.del(eventsKey(stack.prefix, job.id));
    const url = `${baseUrl}/v1/jobs/${job.id}/events`;
    const first = await openSse(url);
    await first.ended;
    const events = eventsOf(first);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ event: 'done', id: '0-1' });
    expect(JSON.parse(events[0]!.data!)).toEqual({ type: 'done', status: 'completed' });
    const again = await openSse(url, { 'last-event-id': events[0]!.id! });
    await again.ended;
    expect(again.status).toBe(204);
  });

  it(`(e) ${FOLLOWERS} concurrent followers: the API's Redis connections stay constant; each follower gets its done`, async () => {
    // Every call is held at the provider until the followers are all connected.
    stack.fake.setBehaviour('*', { hold: true });
    const followers: SseConnection[] = [];
    try {
      const ids: string[] = [];
      for (let start = 0; start < FOLLOWERS; start += 50) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(50, FOLLOWERS - start) }, () =>
            stack.submit({ preset: 'three', messages: MESSAGES }),
          ),
        );
        ids.push(...batch.map((job) => job.id));
      }
      // One follower first, up to its first event (so the reader that delivered it is
      // connected); then the count before the crowd.
      followers.push(await openSse(`${baseUrl}/v1/jobs/${ids[0]}/events`));
      await until(() => eventsOf(followers[0]!).length > 0, 30_000);
      const before = await apiConnections();
      expect(before).toBeGreaterThan(0);
      expect(before).toBeLessThanOrEqual(10);

      for (let start = 1; start < FOLLOWERS; start += 50) {
        followers.push(
          ...(await Promise.all(
            ids.slice(start, start + 50).map((id) => openSse(`${baseUrl}/v1/jobs/${id}/events`)),
          )),
        );
      }
      expect(followers.map((follower) => follower.status)).toEqual(ids.map(() => 200));
      // All of them connected and streaming (each got its retry: line).
      await until(() => followers.every((follower) => follower.blocks.length > 0), 60_000);
      const during = [await apiConnections()];

      stack.fake.setBehaviour('*', undefined);
      stack.fake.release();
      const sampling = (async () => {
        while (!followers.every((follower) => eventsOf(follower).some((event) => event.event === 'done'))) {
          during.push(await apiConnections());
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      })();
      await Promise.all(followers.map((follower) => follower.ended));
      await sampling;
      expect(Math.max(...during)).toBe(before);
      for (const follower of followers) {
        const story = storyOf(eventsOf(follower));
        expect(story).toEqual(FULL_STORY);
        expect(JSON.parse(eventsOf(follower).at(-1)!.data!)).toEqual({ type: 'done', status: 'completed' });
      }
    } finally {
      stack.fake.setBehaviour('*', undefined);
      stack.fake.release();
      for (const follower of followers) follower.close();
    }
  }, 180_000);
});

/** Serves an API over the given (named) connections on a loopback port, sharing the stack's config. */
async function startApi(stack: MoaStack, redis: Redis, queues: MoaQueues): Promise<Server> {
  const app = createApp({
    queues,
    redis,
    config: stack.config,
    logger: pino({ level: 'silent' }),
    webhookSecret: WEBHOOK_SECRET,
  });
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

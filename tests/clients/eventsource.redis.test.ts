import { EventSource } from 'eventsource';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startMoaStack, type MoaStack } from '../support/moa-stack.js';

const MESSAGES = [{ role: 'user', content: 'Follow me.' }];
const EVENT_TYPES = ['layer_started', 'layer_finished', 'done'] as const;

/** Resolves once `predicate` holds, checking after every event the caller reports. */
function waiter() {
  const waiting: { predicate: () => boolean; resolve: () => void }[] = [];
  return {
    until(predicate: () => boolean): Promise<void> {
      if (predicate()) return Promise.resolve();
      return new Promise((resolve) => waiting.push({ predicate, resolve }));
    },
    check() {
      for (const entry of [...waiting]) {
        if (entry.predicate()) {
          waiting.splice(waiting.indexOf(entry), 1);
          entry.resolve();
        }
      }
    },
  };
}

/** The `eventsource` package (v4) on a job's event stream: its own reconnection, Last-Event-ID and the 204. */
describe('eventsource', () => {
  let stack: MoaStack;
  let baseUrl: string;

  beforeAll(async () => {
    stack = await startMoaStack({ name: 'clients-eventsource', redisUrl: inject('redisUrl'), workers: 1 });
    baseUrl = await stack.listen();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('resumes after a drop mid-job without duplicates, and stops at the 204 after done', async () => {
    stack.fake.setBehaviour('aggregator', { hold: true });
    try {
      const job = await stack.submit({ preset: 'three', messages: MESSAGES });
      /** Each connection: its status and the Last-Event-ID it sent. */
      const connections: { status: number; lastEventId: string | null; seenBefore: number }[] = [];
      const events: { type: string; id: string; data: Record<string, unknown> }[] = [];
      const progress = waiter();
      let cut: (() => void) | undefined;

      const source = new EventSource(`${baseUrl}/v1/jobs/${job.id}/events`, {
        // The first connection is cut by the network (its body ends) once three events have come.
        fetch: async (input, init) => {
          const headers = new Headers(init?.headers);
          const response = await fetch(input, init);
          connections.push({
            status: response.status,
            lastEventId: headers.get('last-event-id'),
            seenBefore: events.length,
          });
          progress.check();
          if (connections.length !== 1 || !response.body) return response;
          const reader = response.body.getReader();
          let closed = false;
          const body = new ReadableStream<Uint8Array>({
            start(controller) {
              cut = () => {
                if (closed) return;
                closed = true;
                void reader.cancel();
                controller.close();
              };
            },
            async pull(controller) {
              const { value, done } = await reader.read();
              if (closed) return;
              if (done) {
                closed = true;
                controller.close();
              } else controller.enqueue(value);
            },
          });
          return new Response(body, { status: response.status, headers: response.headers });
        },
      });
      for (const type of EVENT_TYPES) {
        source.addEventListener(type, (event) => {
          events.push({
            type,
            id: event.lastEventId,
            data: JSON.parse(event.data) as Record<string, unknown>,
          });
          if (events.length >= 3) cut?.();
          progress.check();
        });
      }
      source.addEventListener('error', () => progress.check());

      // Dropped after three events; EventSource reconnects by itself with the last id it saw.
      await progress.until(() => connections.length >= 2);
      // Mid-job (the aggregator is held, so no done yet), it asks to resume after the last event it saw.
      const resumed = connections[1]!;
      expect(resumed.status).toBe(200);
      expect(resumed.seenBefore).toBeGreaterThanOrEqual(3);
      expect(resumed.lastEventId).toBe(events[resumed.seenBefore - 1]?.id);
      expect(events.some((event) => event.type === 'done')).toBe(false);
      stack.fake.setBehaviour('aggregator', undefined);
      stack.fake.release('aggregator');

      // After done the server closes; the reconnect that follows is a 204, which ends EventSource.
      await progress.until(() => source.readyState === EventSource.CLOSED);
      expect(events.at(-1)?.type).toBe('done');
      expect(events.filter((event) => event.type === 'done')).toHaveLength(1);
      expect(new Set(events.map((event) => event.id)).size).toBe(events.length);
      const ids = events.map((event) => event.id);
      expect([...ids].sort(compareStreamIds)).toEqual(ids);
      expect(connections.map((connection) => connection.status)).toEqual([200, 200, 204]);
      expect(events.filter((event) => event.type === 'layer_started')).toHaveLength(3);
      expect(connections[2]?.lastEventId).toBe(events.at(-1)?.id);
      source.close();
    } finally {
      stack.fake.setBehaviour('aggregator', undefined);
      stack.fake.release('aggregator');
    }
  });
});

/** Orders Redis stream ids (`<ms>-<seq>`). */
function compareStreamIds(a: string, b: string): number {
  const [aMs = 0, aSeq = 0] = a.split('-').map(Number);
  const [bMs = 0, bSeq = 0] = b.split('-').map(Number);
  return aMs - bMs || aSeq - bSeq;
}

import type { Response } from 'express';

/** Options of {@link startSse}. */
export interface SseOptions {
  /** Comment lines this often keep proxies from closing a quiet stream. @defaultValue 15000 */
  heartbeatMs?: number;
  /** Sent first as `retry:`: how long an `EventSource` waits before it reconnects. Unset: not sent. */
  retryMs?: number;
}

/** An open Server-Sent Events response. */
export interface SseStream {
  /** Writes one event; `id` becomes the client's `Last-Event-ID`. Nothing after `end`. */
  write(data: string, event?: string, id?: string): void;
  end(): void;
}

/** Starts a Server-Sent Events response, with a heartbeat so proxies keep it open during long layers. */
export function startSse(response: Response, options: number | SseOptions = {}): SseStream {
  const { heartbeatMs = 15_000, retryMs } = typeof options === 'number' ? { heartbeatMs: options } : options;
  response.status(200).set({
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  response.flushHeaders();
  if (retryMs !== undefined) response.write(`retry: ${Math.round(retryMs)}\n\n`);
  const heartbeat = setInterval(() => response.write(': keep-alive\n\n'), heartbeatMs);
  response.on('close', () => clearInterval(heartbeat));
  return {
    write(data, event, id) {
      if (response.writableEnded) return;
      // An id never holds a line break (they are stream entry ids), but a stray one must not split the event.
      const idLine = id === undefined ? '' : `id: ${id.replace(/[\r\n]/g, '')}\n`;
      response.write(`${idLine}${event ? `event: ${event}\n` : ''}data: ${data}\n\n`);
    },
    end() {
      clearInterval(heartbeat);
      if (!response.writableEnded) response.end();
    },
  };
}

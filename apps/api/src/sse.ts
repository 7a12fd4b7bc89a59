import type { Response } from 'express';

/** Starts a Server-Sent Events response, with a heartbeat so proxies keep it open during long layers. */
export function startSse(
  response: Response,
  heartbeatMs = 15_000,
): { write(data: string, event?: string): void; end(): void } {
  response.status(200).set({
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  response.flushHeaders();
  const heartbeat = setInterval(() => response.write(': keep-alive\n\n'), heartbeatMs);
  response.on('close', () => clearInterval(heartbeat));
  return {
    write(data, event) {
      if (response.writableEnded) return;
      response.write(`${event ? `event: ${event}\n` : ''}data: ${data}\n\n`);
    },
    end() {
      clearInterval(heartbeat);
      if (!response.writableEnded) response.end();
    },
  };
}

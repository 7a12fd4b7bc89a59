import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** Options for {@link startRedisServer}. */
export interface RedisServerOptions {
  /**
   * Port to listen on; 0 picks a free one.
   * @defaultValue 0
   */
  port?: number;
  /**
   * Turn on the append-only file, so a restarted server keeps its data.
   * @defaultValue false
   */
  appendOnly?: boolean;
  /**
   * Data directory; a fresh temporary one when omitted.
   */
  directory?: string;
}

/** A `redis-server` child process started for tests, benchmarks or the demo. */
export interface RedisServerProcess {
  url: string;
  port: number;
  directory: string;
  process: ChildProcess;
  /** SIGKILL the server (a crash), keeping its data directory. */
  kill(): Promise<void>;
  /** Stop the server and delete its temporary directory. */
  stop(): Promise<void>;
}

/** Finds a free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Waits until Redis at `url` answers PING, or throws after `timeoutMs`. */
export async function waitForRedis(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch (error) {
      lastError = error;
      client.disconnect();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`Redis at ${url} did not answer within ${timeoutMs} ms: ${String(lastError)}`);
}

/**
 * Starts `redis-server` as a child process on loopback. Throws a clear error
 * when the binary is missing (install the Debian `redis-server` package).
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerProcess> {
  const port = options.port && options.port > 0 ? options.port : await freePort();
  const ownsDirectory = !options.directory;
  const directory = options.directory ?? mkdtempSync(join(tmpdir(), 'moa-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--dir',
    directory,
    '--appendonly',
    options.appendOnly ? 'yes' : 'no',
    '--appendfsync',
    'always',
    '--maxmemory-policy',
    'noeviction',
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(new Error(`cannot start redis-server (install the redis-server package): ${error.message}`)),
    );
  });
  const url = `redis://127.0.0.1:${port}`;
  await Promise.race([waitForRedis(url), spawnError]);
  const exited = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
  return {
    url,
    port,
    directory,
    process: child,
    async kill() {
      child.kill('SIGKILL');
      await exited();
    },
    async stop() {
      child.kill('SIGTERM');
      await exited();
      if (ownsDirectory) rmSync(directory, { recursive: true, force: true });
    },
  };
}

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

/**
 * Waits until Redis at `url` answers PING, or throws after `timeoutMs` (or
 * as soon as `signal` aborts). Each connection attempt is itself bounded by
 * what is left of `timeoutMs`, so an address that drops packets cannot make
 * it wait longer.
 */
export async function waitForRedis(url: string, timeoutMs = 10_000, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline && !signal?.aborted) {
    const client = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      connectTimeout: Math.max(100, deadline - Date.now()),
      commandTimeout: Math.max(100, deadline - Date.now()),
    });
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
  if (signal?.aborted) throw new Error(`stopped waiting for Redis at ${url}: ${String(signal.reason)}`);
  throw new Error(`Redis at ${url} did not answer within ${timeoutMs} ms: ${String(lastError)}`);
}

/**
 * Starts `redis-server` as a child process on loopback. Throws a clear error
 * when the binary is missing (its `cause` is the spawn error, code `ENOENT`)
 * or when the server exits before it answers.
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
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // Redis logs to stdout; keep draining it (a full pipe would block the server) and keep the tail for errors.
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-2000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `redis://127.0.0.1:${port}`;
  // Stop polling as soon as the server cannot come up: not installed, or exited (port taken, bad flag).
  const gaveUp = new AbortController();
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      const reason =
        error.code === 'ENOENT'
          ? 'redis-server is not installed (Debian/Ubuntu: apt-get install redis-server)'
          : '';
      reject(new Error(`cannot start redis-server: ${reason || error.message}`, { cause: error }));
    });
    child.once('exit', (code, signal) => {
      const tail = output.trim().split('\n').slice(-3).join(' | ');
      reject(new Error(`redis-server exited (${code ?? signal}) before answering${tail ? `: ${tail}` : ''}`));
    });
  });
  failed.catch(() => gaveUp.abort('redis-server did not start'));
  try {
    await Promise.race([waitForRedis(url, 10_000, gaveUp.signal), failed]);
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined)
      child.kill('SIGKILL');
    if (ownsDirectory) rmSync(directory, { recursive: true, force: true });
    throw error;
  } finally {
    gaveUp.abort('done');
  }
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

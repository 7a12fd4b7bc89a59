import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startRedisServer } from './redis-server-process.js';
import {
  DEFAULT_REDIS_URL,
  displayRedisUrl,
  dockerEngineAnswers,
  findRedis,
  NO_REDIS_REMEDY,
  NoRedisError,
  RedisUrlUnreachableError,
  type RedisProbes,
} from './resolve-redis.js';

/** Probes that record their calls; each answers as told, and anything not told fails the test. */
function fakeProbes(setup: {
  answering?: string[];
  docker?: boolean;
  container?: 'starts' | 'fails';
  server?: 'starts' | 'missing' | 'fails';
}) {
  const calls: string[] = [];
  const stopped: string[] = [];
  const probes: RedisProbes = {
    answers: vi.fn(async (url: string) => {
      calls.push(`answers ${url}`);
      return (setup.answering ?? []).includes(url);
    }),
    dockerEngineAnswers: vi.fn(async () => {
      calls.push('docker');
      return setup.docker ?? false;
    }),
    startContainer: vi.fn(async () => {
      calls.push('container');
      if (setup.container !== 'starts') throw new Error('pull access denied for redis');
      return { url: 'redis://localhost:32768', stop: async () => void stopped.push('container') };
    }),
    startServer: vi.fn(async () => {
      calls.push('server');
      if (setup.server === 'missing') {
        throw new Error('cannot start redis-server', {
          cause: Object.assign(new Error('spawn redis-server ENOENT'), { code: 'ENOENT' }),
        });
      }
      if (setup.server !== 'starts') throw new Error('redis-server exited (1) before answering');
      return { url: 'redis://127.0.0.1:40001', stop: async () => void stopped.push('server') };
    }),
  };
  return { probes, calls, stopped };
}

describe('findRedis: the order of decisions', () => {
  it('uses an answering REDIS_URL and nothing else, and stopping it stops nothing', async () => {
    const { probes, calls, stopped } = fakeProbes({ answering: ['redis://db:6380'] });
    const redis = await findRedis({
      env: { REDIS_URL: 'redis://db:6380' },
      defaultUrl: DEFAULT_REDIS_URL,
      probes,
    });
    expect(redis).toMatchObject({ url: 'redis://db:6380', source: 'REDIS_URL' });
    expect(redis.description).toBe('redis://db:6380 (from REDIS_URL)');
    expect(calls).toEqual(['answers redis://db:6380']);
    await redis.stop();
    expect(stopped).toEqual([]);
  });

  it('treats a set REDIS_URL that does not answer as an error naming it, never falling back', async () => {
    const { probes, calls } = fakeProbes({ answering: [DEFAULT_REDIS_URL], docker: true, server: 'starts' });
    const error = await findRedis({
      env: { REDIS_URL: 'redis://:s3cret@db:6380/2' },
      defaultUrl: DEFAULT_REDIS_URL,
      probes,
    }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(RedisUrlUnreachableError);
    expect((error as Error).message).toBe(
      'REDIS_URL is set to redis://:***@db:6380/2 but no Redis answers there: ' +
        'start that Redis, correct REDIS_URL, or unset it to let a Redis be found or started',
    );
    expect(calls).toEqual(['answers redis://:s3cret@db:6380/2']);
  });

  it('uses the default URL when REDIS_URL is unset and the default answers', async () => {
    const { probes, calls } = fakeProbes({ answering: [DEFAULT_REDIS_URL], docker: true });
    const redis = await findRedis({ env: { REDIS_URL: '' }, defaultUrl: DEFAULT_REDIS_URL, probes });
    expect(redis).toMatchObject({ url: DEFAULT_REDIS_URL, source: 'default' });
    expect(calls).toEqual([`answers ${DEFAULT_REDIS_URL}`]);
  });

  it('never tries a default URL when given none (the tests), and starts a container when Docker answers', async () => {
    const { probes, calls, stopped } = fakeProbes({
      answering: [DEFAULT_REDIS_URL],
      docker: true,
      container: 'starts',
    });
    const lines: string[] = [];
    const redis = await findRedis({ env: {}, probes, log: (line) => lines.push(line) });
    expect(redis).toMatchObject({ url: 'redis://localhost:32768', source: 'testcontainers' });
    expect(redis.description).toContain('redis:7 container');
    expect(calls).toEqual(['docker', 'container']);
    expect(lines).toEqual(['a Docker engine answers: starting a redis:7 container through testcontainers…']);
    await redis.stop();
    expect(stopped).toEqual(['container']);
  });

  it('falls back from an unreachable default to Docker, then to a local redis-server', async () => {
    const { probes, calls, stopped } = fakeProbes({ docker: false, server: 'starts' });
    const redis = await findRedis({ env: {}, defaultUrl: DEFAULT_REDIS_URL, probes });
    expect(redis).toMatchObject({ url: 'redis://127.0.0.1:40001', source: 'redis-server' });
    expect(calls).toEqual([`answers ${DEFAULT_REDIS_URL}`, 'docker', 'server']);
    await redis.stop();
    expect(stopped).toEqual(['server']);
  });

  it('starts a local redis-server when Docker answers but the container does not start', async () => {
    const { probes, calls } = fakeProbes({ docker: true, container: 'fails', server: 'starts' });
    const redis = await findRedis({ env: {}, probes });
    expect(redis.source).toBe('redis-server');
    expect(calls).toEqual(['docker', 'container', 'server']);
  });

  it('says exactly what to install or set when nothing works', async () => {
    const { probes } = fakeProbes({ docker: false, server: 'missing' });
    const error = await findRedis({ env: {}, defaultUrl: DEFAULT_REDIS_URL, probes }).catch(
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(NoRedisError);
    expect((error as Error).message).toBe(
      'no Redis found: set REDIS_URL, start a Docker engine, or install redis-server ' +
        '(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis). ' +
        '(Checked: REDIS_URL is not set; nothing answers at redis://127.0.0.1:6379; ' +
        'no Docker engine answers; redis-server is not installed.)',
    );
  });

  it('tells why each step failed when Docker answers but nothing starts', async () => {
    const { probes } = fakeProbes({ docker: true, container: 'fails', server: 'fails' });
    const error = (await findRedis({ env: {}, probes }).catch((thrown: unknown) => thrown)) as NoRedisError;
    expect(error.message.startsWith(`no Redis found: ${NO_REDIS_REMEDY}.`)).toBe(true);
    expect(error.attempts).toEqual([
      'REDIS_URL is not set',
      'the redis:7 container did not start (pull access denied for redis)',
      'redis-server did not start (redis-server exited (1) before answering)',
    ]);
  });
});

describe('displayRedisUrl', () => {
  it('masks a password and leaves the rest', () => {
    expect(displayRedisUrl('redis://user:pw@host:1/0')).toBe('redis://user:***@host:1/0');
    expect(displayRedisUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(displayRedisUrl('not a url //a:b@c')).toBe('not a url //***@c');
  });
});

describe('the real probes', () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  const savedPath = process.env.PATH;
  const savedDockerHost = process.env.DOCKER_HOST;
  afterEach(async () => {
    process.env.PATH = savedPath;
    if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = savedDockerHost;
    for (const socket of sockets.splice(0)) socket.destroy();
    await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  });

  /** A TCP server that accepts connections and never says a word. */
  async function silentServer(): Promise<number> {
    const server = createServer((socket) => sockets.push(socket));
    servers.push(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return (server.address() as AddressInfo).port;
  }

  it('gives up on a Docker engine that accepts but never answers, within its bound', async () => {
    process.env.DOCKER_HOST = `tcp://127.0.0.1:${await silentServer()}`;
    const started = performance.now();
    expect(await dockerEngineAnswers(300)).toBe(false);
    // An upper bound on waiting (the probe must not hang), far above the 300 ms asked for.
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('reports an explicit REDIS_URL on a closed port as unreachable', async () => {
    await expect(findRedis({ env: { REDIS_URL: 'redis://127.0.0.1:1' } })).rejects.toThrow(
      'REDIS_URL is set to redis://127.0.0.1:1 but no Redis answers there',
    );
  });

  it('says what to install when redis-server is missing and no Docker engine answers', async () => {
    process.env.PATH = '/nonexistent';
    const error = await findRedis({ env: {}, probes: { dockerEngineAnswers: async () => false } }).catch(
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(NoRedisError);
    expect((error as NoRedisError).attempts).toContain('redis-server is not installed');
    expect((error as Error).message).toContain(NO_REDIS_REMEDY);
  });

  const hasRedisServer = spawnSync('redis-server', ['--version']).error === undefined;
  it.skipIf(!hasRedisServer)(
    'fails at once, with the reason, when redis-server exits before answering',
    async () => {
      const port = await silentServer(); // the port is taken, so redis-server cannot bind it
      await expect(startRedisServer({ port })).rejects.toThrow(/redis-server exited \(1\) before answering/);
    },
  );
});

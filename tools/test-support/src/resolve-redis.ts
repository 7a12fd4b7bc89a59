import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { startRedisServer } from './redis-server-process.js';

/** Where the test Redis came from, and how to release it. */
export interface ResolvedRedis {
  url: string;
  source: 'REDIS_URL' | 'testcontainers' | 'redis-server';
  stop(): Promise<void>;
}

/** Asks the Docker engine for `/_ping` over its socket; false when none answers. */
async function dockerEngineAnswers(): Promise<boolean> {
  const host = process.env.DOCKER_HOST;
  const socketPath = host?.startsWith('unix://') ? host.slice('unix://'.length) : '/var/run/docker.sock';
  if (host && !host.startsWith('unix://')) return true; // a remote engine: let testcontainers decide
  if (!existsSync(socketPath)) return false;
  return new Promise((resolve) => {
    const probe = request({ socketPath, path: '/_ping', timeout: 2000 }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    probe.on('error', () => resolve(false));
    probe.on('timeout', () => {
      probe.destroy();
      resolve(false);
    });
    probe.end();
  });
}

/**
 * Finds a Redis for tests: `REDIS_URL` when set, else a testcontainers
 * `redis:7` when a Docker engine answers, else a local `redis-server` child
 * process on a free port.
 */
export async function resolveRedis(): Promise<ResolvedRedis> {
  const fromEnvironment = process.env.REDIS_URL;
  if (fromEnvironment) return { url: fromEnvironment, source: 'REDIS_URL', stop: async () => undefined };
  if (await dockerEngineAnswers()) {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer('redis:7-alpine')
      .withExposedPorts(6379)
      .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
      .start();
    return {
      url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
      source: 'testcontainers',
      stop: async () => {
        await container.stop();
      },
    };
  }
  const server = await startRedisServer();
  return { url: server.url, source: 'redis-server', stop: () => server.stop() };
}

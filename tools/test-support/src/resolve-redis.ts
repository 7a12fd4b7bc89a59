import { startRedisServer, waitForRedis } from './redis-server-process.js';

/** The Redis URL the demo (and a local deployment) tries when `REDIS_URL` is unset. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** The image of the Redis container started through testcontainers. */
export const REDIS_IMAGE = 'redis:7';

/** What to do when no Redis can be found or started: the whole remedy, in one line. */
export const NO_REDIS_REMEDY =
  'set REDIS_URL, start a Docker engine, or install redis-server ' +
  '(Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis)';

/** Where the Redis came from. */
export type RedisSource = 'REDIS_URL' | 'default' | 'testcontainers' | 'redis-server';

/** A Redis found or started by {@link findRedis}, and how to release it. */
export interface ResolvedRedis {
  url: string;
  source: RedisSource;
  /** One line for people: the URL (password masked) and where it came from. */
  description: string;
  /** Stops what {@link findRedis} started (a container, a child process); a no-op for a Redis it only found. */
  stop(): Promise<void>;
}

/** A Redis that a probe started. */
export interface StartedRedis {
  url: string;
  stop(): Promise<void>;
}

/**
 * The side effects {@link findRedis} decides between, injectable so the order
 * of decisions can be tested without Redis or Docker.
 */
export interface RedisProbes {
  /** Whether a Redis at `url` answers PING within a short time; never throws. */
  answers(url: string): Promise<boolean>;
  /** Whether a Docker engine answers; quick, bounded, and never throws. */
  dockerEngineAnswers(): Promise<boolean>;
  /** Starts a `redis:7` container through testcontainers. */
  startContainer(): Promise<StartedRedis>;
  /** Starts a local `redis-server` on a free port; rejects with code `ENOENT` (or a cause with it) when not installed. */
  startServer(): Promise<StartedRedis>;
}

/** Options of {@link findRedis}. */
export interface FindRedisOptions {
  /**
   * Where `REDIS_URL` is read.
   * @defaultValue process.env
   */
  env?: NodeJS.ProcessEnv;
  /**
   * A URL to use when `REDIS_URL` is unset and it answers; skipped when omitted (the tests).
   * An explicit `REDIS_URL` that does not answer is an error; this one only falls back.
   */
  defaultUrl?: string;
  /** Replaces some of the real probes (tests). */
  probes?: Partial<RedisProbes>;
  /** Told each step as it happens, e.g. `console.log`. */
  log?: (line: string) => void;
  /**
   * How long the Docker engine may take to answer before it counts as absent.
   * @defaultValue 3000
   */
  dockerProbeTimeoutMs?: number;
}

/** Thrown when no Redis was found and none could be started; the message says what to install or set. */
export class NoRedisError extends Error {
  override readonly name = 'NoRedisError';
  constructor(readonly attempts: string[]) {
    super(`no Redis found: ${NO_REDIS_REMEDY}. (Checked: ${attempts.join('; ')}.)`);
  }
}

/** Thrown when `REDIS_URL` is set but nothing answers there: an explicit choice is never silently replaced. */
export class RedisUrlUnreachableError extends Error {
  override readonly name = 'RedisUrlUnreachableError';
  constructor(readonly url: string) {
    super(
      `REDIS_URL is set to ${displayRedisUrl(url)} but no Redis answers there: ` +
        'start that Redis, correct REDIS_URL, or unset it to let a Redis be found or started',
    );
  }
}

/** The URL with any password replaced by `***`, for logs and messages. */
export function displayRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Whether `error` (or its cause) is a spawn "no such file": the binary is not installed. */
function isNotInstalled(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 5; depth += 1) {
    if ((current as NodeJS.ErrnoException).code === 'ENOENT') return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** Resolves `fallback` after `ms` unless `work` settles first; the timer never keeps the process alive. */
function within<T>(work: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    timer.unref();
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      () => {
        clearTimeout(timer);
        resolve(fallback);
      },
    );
  });
}

/**
 * Asks testcontainers whether it finds a working container runtime (the same
 * strategies it will use to start the container: `DOCKER_HOST`,
 * `~/.testcontainers.properties`, the usual and rootless sockets), giving up
 * after `timeoutMs` so an engine that never answers cannot hang the caller.
 */
export async function dockerEngineAnswers(timeoutMs = 3000): Promise<boolean> {
  const probe = (async () => {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  })();
  return within(probe, timeoutMs, false);
}

/** Starts a {@link REDIS_IMAGE} container through testcontainers; stop() removes it. */
export async function startRedisContainer(): Promise<StartedRedis> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(REDIS_IMAGE)
    .withExposedPorts(6379)
    .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
    .start();
  return {
    url: `redis://${container.getHost()}:${container.getMappedPort(6379)}`,
    stop: async () => {
      await container.stop();
    },
  };
}

/** The real probes. */
export function realRedisProbes(dockerProbeTimeoutMs = 3000): RedisProbes {
  return {
    answers: (url) =>
      waitForRedis(url, 1500).then(
        () => true,
        () => false,
      ),
    dockerEngineAnswers: () => dockerEngineAnswers(dockerProbeTimeoutMs),
    startContainer: startRedisContainer,
    startServer: async () => {
      const server = await startRedisServer();
      return { url: server.url, stop: () => server.stop() };
    },
  };
}

/**
 * The one way tests and the demo find a Redis, in this order:
 *
 * 1. `REDIS_URL` when set; when it does not answer, a {@link RedisUrlUnreachableError} naming it.
 * 2. `defaultUrl` (the demo: {@link DEFAULT_REDIS_URL}) when it answers.
 * 3. A `redis:7` container through testcontainers when a Docker engine answers.
 * 4. A local `redis-server` on a free port.
 * 5. Else a {@link NoRedisError} that says what to install or set, and why each step failed.
 *
 * The result's `stop()` stops only what this call started.
 */
export async function findRedis(options: FindRedisOptions = {}): Promise<ResolvedRedis> {
  const env = options.env ?? process.env;
  const probes = { ...realRedisProbes(options.dockerProbeTimeoutMs), ...options.probes };
  const log = options.log ?? (() => undefined);
  const found = (
    url: string,
    source: RedisSource,
    how: string,
    stop: () => Promise<void> = async () => undefined,
  ): ResolvedRedis => ({
    url,
    source,
    description: `${displayRedisUrl(url)} (${how})`,
    stop,
  });

  const explicit = env.REDIS_URL?.trim();
  if (explicit) {
    if (await probes.answers(explicit)) return found(explicit, 'REDIS_URL', 'from REDIS_URL');
    throw new RedisUrlUnreachableError(explicit);
  }

  const attempts: string[] = ['REDIS_URL is not set'];
  if (options.defaultUrl) {
    if (await probes.answers(options.defaultUrl)) {
      return found(options.defaultUrl, 'default', 'the default, as REDIS_URL is not set');
    }
    attempts.push(`nothing answers at ${displayRedisUrl(options.defaultUrl)}`);
    log(`no Redis answers at ${displayRedisUrl(options.defaultUrl)}`);
  }

  if (await probes.dockerEngineAnswers()) {
    log(`a Docker engine answers: starting a ${REDIS_IMAGE} container through testcontainers…`);
    try {
      const container = await probes.startContainer();
      return found(
        container.url,
        'testcontainers',
        `a ${REDIS_IMAGE} container started through testcontainers`,
        container.stop,
      );
    } catch (error) {
      attempts.push(`the ${REDIS_IMAGE} container did not start (${messageOf(error)})`);
      log(`the ${REDIS_IMAGE} container did not start: ${messageOf(error)}`);
    }
  } else {
    attempts.push('no Docker engine answers');
    log('no Docker engine answers');
  }

  log('starting a local redis-server on a free port…');
  try {
    const server = await probes.startServer();
    return found(server.url, 'redis-server', 'a local redis-server started on a free port', server.stop);
  } catch (error) {
    attempts.push(
      isNotInstalled(error)
        ? 'redis-server is not installed'
        : `redis-server did not start (${messageOf(error)})`,
    );
  }
  throw new NoRedisError(attempts);
}

/** The tests' Redis: {@link findRedis} without a default URL. */
export function resolveRedis(options: Omit<FindRedisOptions, 'defaultUrl'> = {}): Promise<ResolvedRedis> {
  return findRedis(options);
}

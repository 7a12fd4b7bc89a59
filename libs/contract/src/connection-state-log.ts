import type { Logger } from 'pino';
import { isInfrastructureError } from './infrastructure-error.js';
import { withTimeout } from './with-timeout.js';

/**
 * One process's view of whether Redis serves it, logged as state changes
 * rather than as errors: a lost (or full, or read-only) Redis is one warning,
 * its recovery one info line, however many commands, polls and lock renewals
 * failed in between. Every 'error' listener of the process's connections,
 * queues and workers reports here.
 */
export interface ConnectionStateLogger {
  /**
   * Reports an error of a connection or of a command. An infrastructure error
   * (see `isInfrastructureError`) is taken as an outage: the first one after a
   * healthy spell logs one warning, later ones are only counted. Returns true
   * when it took the error, false for any other error, which the caller logs
   * as it would have.
   */
  onError(error: unknown): boolean;
  /**
   * Reports that Redis serves again: a write that succeeded, or a 'ready'
   * event after a lost connection (a read is no proof: a full Redis still
   * answers reads). Logs the recovery once, with how long the outage lasted
   * and how many errors were held back. Ignored while errors are still
   * arriving (one less than `settleMs` ago), so a flapping Redis does not
   * log a pair of lines per command.
   */
  onReady(): void;
  /** False from the first infrastructure error until the recovery. */
  readonly healthy: boolean;
  /**
   * When (by its clock, epoch ms) it last took an infrastructure error,
   * whoever reported it: a command's caller, a connection event or its own
   * probe. 0 before the first.
   */
  readonly lastErrorAt: number;
  /** Resolves once Redis is healthy again (at once when it is). */
  whenHealthy(): Promise<void>;
  /** Stops the probe; nothing is logged after this. */
  close(): void;
}

/** Options of {@link createConnectionStateLogger}. */
export interface ConnectionStateLoggerOptions {
  /**
   * A command that succeeds only when Redis serves writes again (e.g. a `SET`
   * with a short expiry). While unhealthy it runs every `probeIntervalMs`, and
   * its success counts as {@link ConnectionStateLogger.onReady}. Without a
   * probe, recovery is whatever the caller reports with `onReady`.
   */
  probe?: () => Promise<unknown>;
  /** @defaultValue 1000 */
  probeIntervalMs?: number;
  /**
   * While healthy, run the probe this often too. A paused or unresponsive
   * Redis fails no command, it only delays them all, so without this an
   * outage of that kind is noticed only by whoever set a timeout of its own.
   * @defaultValue undefined (the probe runs only during an outage)
   */
  watchIntervalMs?: number;
  /** Bound of one probe: past it, the probe has failed with "Command timed out". @defaultValue 2000 */
  probeTimeoutMs?: number;
  /** @defaultValue 250 */
  settleMs?: number;
  /** While the outage lasts, one more warning this often (with the count so far). @defaultValue 60000 */
  remindEveryMs?: number;
  /** The clock (tests). @defaultValue Date.now */
  now?: () => number;
}

/** How many distinct error messages an outage's recovery line lists. */
const MAX_DISTINCT_MESSAGES = 5;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Creates the connection state logger of one process (or one named part of
 * it). `name` is logged as the `redis` field of its lines, e.g. `worker` or
 * `api`.
 */
export function createConnectionStateLogger(
  logger: Logger,
  name: string,
  options: ConnectionStateLoggerOptions = {},
): ConnectionStateLogger {
  const now = options.now ?? Date.now;
  const probeIntervalMs = options.probeIntervalMs ?? 1000;
  const probeTimeoutMs = options.probeTimeoutMs ?? 2000;
  const settleMs = options.settleMs ?? 250;
  const remindEveryMs = options.remindEveryMs ?? 60_000;
  let healthy = true;
  let closed = false;
  let downSince = 0;
  let lastErrorAt = 0;
  let lastReminderAt = 0;
  let suppressed = 0;
  let messages = new Set<string>();
  let waiters: (() => void)[] = [];
  let probeTimer: NodeJS.Timeout | undefined;
  /** A probe is running (its timer has fired): its end schedules the next. */
  let probing = false;

  /**
   * The next probe, one at a time: every `probeIntervalMs` during an outage,
   * every `watchIntervalMs` (when set) while healthy. Its success reports
   * `onReady`, its failure `onError`, so it both ends outages and starts them.
   */
  function scheduleProbe(): void {
    const probe = options.probe;
    const intervalMs = healthy ? options.watchIntervalMs : probeIntervalMs;
    if (!probe || intervalMs === undefined || closed || probeTimer) return;
    probeTimer = setTimeout(() => {
      probing = true;
      const settle = (report: () => void) => {
        probing = false;
        probeTimer = undefined;
        report();
        scheduleProbe();
      };
      withTimeout(probe(), probeTimeoutMs).then(
        () => settle(() => state.onReady()),
        (error: unknown) => settle(() => state.onError(error)),
      );
    }, intervalMs);
    probeTimer.unref?.();
  }

  /** After a change of state: a waiting probe is rescheduled at the new state's interval. */
  function rescheduleProbe(): void {
    if (probing) return;
    clearTimeout(probeTimer);
    probeTimer = undefined;
    scheduleProbe();
  }

  function recover(): void {
    if (healthy || closed) return;
    healthy = true;
    rescheduleProbe();
    logger.info(
      { redis: name, downMs: now() - downSince, errors: suppressed, messages: [...messages] },
      'redis available again',
    );
    for (const resolve of waiters.splice(0)) resolve();
  }

  const state: ConnectionStateLogger = {
    onError(error) {
      if (!isInfrastructureError(error)) return false;
      if (closed) return true;
      const at = now();
      lastErrorAt = at;
      if (healthy) {
        healthy = false;
        downSince = at;
        lastReminderAt = at;
        suppressed = 0;
        messages = new Set([describe(error)]);
        logger.warn({ redis: name, error: describe(error) }, 'redis unavailable: waiting for it to recover');
        rescheduleProbe();
        return true;
      }
      suppressed += 1;
      if (messages.size < MAX_DISTINCT_MESSAGES) messages.add(describe(error));
      if (at - lastReminderAt >= remindEveryMs) {
        lastReminderAt = at;
        logger.warn(
          { redis: name, downMs: at - downSince, errors: suppressed, error: describe(error) },
          'redis still unavailable',
        );
      }
      return true;
    },
    onReady() {
      if (healthy || closed) return;
      if (now() - lastErrorAt < settleMs) return;
      recover();
    },
    get healthy() {
      return healthy;
    },
    get lastErrorAt() {
      return lastErrorAt;
    },
    whenHealthy() {
      if (healthy || closed) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    close() {
      closed = true;
      clearTimeout(probeTimer);
      probeTimer = undefined;
      for (const resolve of waiters.splice(0)) resolve();
      waiters = [];
    },
  };
  scheduleProbe();
  return state;
}

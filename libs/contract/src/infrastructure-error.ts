/**
 * Whether an error means "Redis cannot serve us right now" rather than "this
 * job is wrong" or "a provider failed": the one rule that decides whether a
 * failure is an outage (wait and retry, never a failed request) or the job's
 * own (attempt rules apply).
 */

/**
 * Error codes Redis puts first in a reply when it is refusing work for a
 * while: out of memory under `noeviction`, a replica during a failover (and
 * `UNBLOCKED`, what a blocked command such as BullMQ's `BZPOPMIN` gets when
 * its server turns replica), loading its data set, stuck in a long script,
 * master link down, cannot persist, not enough replicas, cluster resharding.
 * Matched as the whole first word, so `BUSYGROUP` or `BUSYKEY` (the caller's
 * mistakes) are not.
 */
export const REDIS_REFUSAL_CODES: ReadonlySet<string> = new Set([
  'OOM',
  'READONLY',
  'UNBLOCKED',
  'LOADING',
  'BUSY',
  'MASTERDOWN',
  'MISCONF',
  'NOREPLICAS',
  'CLUSTERDOWN',
  'TRYAGAIN',
]);

/** Socket errors of a lost or unreachable connection (Node's `code`). */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
]);

/** ioredis's own messages when a command could not be sent or answered. */
const CLIENT_MESSAGES = [
  'Connection is closed.',
  'Command timed out',
  "Stream isn't writeable and enableOfflineQueue options is false",
];

/** ioredis error classes (by name, so no import of ioredis is needed). */
const CLIENT_ERROR_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);

/**
 * The Redis error code of a reply: its first word, or, in Redis 6's wrapping
 * of an error raised inside a script (`ERR Error running script …:
 * @user_script:12: -OOM command not allowed …`), the code after the dash.
 */
function replyCode(message: string): string | undefined {
  const scripted = /@user_script:\d+: -([A-Z]+)\b/.exec(message);
  if (scripted) return scripted[1];
  return /^-?([A-Z]+)\b/.exec(message)?.[1];
}

/**
 * True when `error` is an infrastructure error: Redis refusing work for a
 * while (a reply error `OOM` under `noeviction`, `READONLY`, `LOADING`,
 * `BUSY`, `MASTERDOWN`, …, also inside a script or an aborted `MULTI`), the
 * connection lost or unreachable (a socket error such as `ECONNREFUSED` or
 * `ECONNRESET`, ioredis "Connection is closed."), or a command that got no
 * answer in time (ioredis `MaxRetriesPerRequestError`, "Command timed out").
 *
 * Only Redis-shaped errors count: reply codes only on ioredis `ReplyError`s,
 * socket codes only on Node's system errors, and never an error's `cause`. A
 * provider's `OOM: CUDA out of memory` or a webhook receiver's refused
 * connection arrives as one of our own errors and stays the provider's or
 * the receiver's fault.
 */
export function isInfrastructureError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (CLIENT_ERROR_NAMES.has(error.name)) return true;
  const { code, syscall, previousErrors } = error as {
    code?: unknown;
    syscall?: unknown;
    previousErrors?: unknown;
  };
  // Node's system errors carry the failed call in `syscall`; a failed connect to every address is an AggregateError.
  if (
    typeof code === 'string' &&
    CONNECTION_CODES.has(code) &&
    (typeof syscall === 'string' || error.name === 'AggregateError')
  ) {
    return true;
  }
  const message = error.message;
  if (CLIENT_MESSAGES.some((text) => message.startsWith(text))) return true;
  if (error.name !== 'ReplyError') return false;
  // A MULTI whose queued commands Redis refused fails as EXECABORT, with the refusals attached.
  if (Array.isArray(previousErrors) && previousErrors.some((previous) => isInfrastructureError(previous))) {
    return true;
  }
  const reply = replyCode(message);
  return reply !== undefined && REDIS_REFUSAL_CODES.has(reply);
}

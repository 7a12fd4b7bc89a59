/**
 * `promise`, or a rejection with ioredis's "Command timed out" once
 * `milliseconds` have passed: a bound on a wait for Redis that a paused or
 * unresponsive Redis cannot stretch. The message makes it an
 * infrastructure error (`isInfrastructureError`), like ioredis's own timeout.
 * The timer does not keep the process alive.
 */
export function withTimeout<T>(promise: Promise<T>, milliseconds: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('Command timed out')), milliseconds);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

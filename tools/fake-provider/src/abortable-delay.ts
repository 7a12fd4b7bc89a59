/**
 * Waits `ms` milliseconds, or until `signal` aborts. Resolves `true` when the
 * full time passed and `false` when aborted; it never rejects, so a client
 * that hangs up mid-wait cannot surface as an unhandled rejection.
 *
 * Timers may fire a little early (libuv rounds to its cached loop time), and
 * tests assert latency as a lower bound, so the wait re-arms until the
 * monotonic clock says `ms` really passed.
 */
export function abortableDelay(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  const deadline = performance.now() + ms;
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const check = () => {
      const remaining = deadline - performance.now();
      if (remaining > 0) {
        timer = setTimeout(check, Math.ceil(remaining));
        return;
      }
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    check();
  });
}

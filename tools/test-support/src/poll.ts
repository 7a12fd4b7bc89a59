/**
 * Reads until `done` accepts the value, every `intervalMs`, or throws after
 * `timeoutMs` with the last value read. For waiting on other processes in
 * tests: an upper bound on waiting, never a speed budget.
 */
export async function pollUntil<T>(
  read: () => T | Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 120_000,
  intervalMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Waits until `condition` holds (see {@link pollUntil}). */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  await pollUntil(condition, (value) => value, timeoutMs);
}

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collector: (() => void) | undefined;

/**
 * Runs a full garbage collection now.
 *
 * Why: validating a batch file turns every line into several short-lived
 * copies of itself (the line's text, the parsed request, BullMQ's JSON of
 * the job and the command written to Redis: for a 4 MB line, about 30 MB of
 * garbage a line, most of it in V8's large-object space, which only a full
 * collection frees). V8 lets the heap grow to several times its live size
 * before it collects on its own, so a 190 MB file of 4 MB lines took a
 * worker's RSS about 190 MiB above its baseline even though the validation
 * never held more than one chunk. Collecting after every few MiB of lines
 * keeps the peak at the live size plus that much garbage (see
 * docs/batch.md for the measurements).
 *
 * How: V8's `gc` function, exposed for a moment through a V8 flag (the
 * technique of the `expose-gc` package), or the global one when the process
 * runs with `--expose-gc`. Should neither work, this does nothing and the
 * validation is only less frugal.
 */
export function collectGarbage(): void {
  if (!collector) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (typeof exposed === 'function') {
      collector = exposed;
    } else {
      try {
        setFlagsFromString('--expose-gc');
        collector = runInNewContext('gc') as () => void;
      } catch {
        collector = () => undefined;
      } finally {
        setFlagsFromString('--no-expose-gc');
      }
    }
  }
  collector();
}

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/** The repository root, for spawning workspace entry points. */
export const REPOSITORY_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A TypeScript entry point running as a real child process. */
export interface TsProcess {
  child: ChildProcess;
  /** Every stdout line so far. */
  lines: string[];
  /** Every stdout line that parsed as JSON (pino logs). */
  logs: Record<string, unknown>[];
  /** Resolves with the first line (existing or future) that matches. */
  waitForLine(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Resolves when the process has exited, with its code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends a signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Runs a workspace TypeScript file with tsx under the `development`
 * condition, so it uses the sources without a build, as a separate process.
 */
export function spawnTsProcess(
  entry: string,
  env: Record<string, string | undefined>,
  args: string[] = [],
  nodeArguments: string[] = [],
): TsProcess {
  const child = spawn(
    process.execPath,
    [...nodeArguments, '--conditions=development', '--import', 'tsx', entry, ...args],
    {
      cwd: REPOSITORY_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  const logs: Record<string, unknown>[] = [];
  const waiters: { predicate: (line: string) => boolean; resolve: (line: string) => void }[] = [];
  const stderr: string[] = [];
  const onLine = (line: string) => {
    lines.push(line);
    if (line.startsWith('{')) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
    for (const waiter of [...waiters]) {
      if (waiter.predicate(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderr.push(line);
    onLine(line);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    lines,
    logs,
    exited,
    waitForLine(predicate, timeoutMs = 30_000) {
      const existing = lines.find(predicate);
      if (existing !== undefined) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(
            new Error(
              `${entry}: no matching line within ${timeoutMs} ms; last output:\n${lines.slice(-20).join('\n')}`,
            ),
          );
        }, timeoutMs);
        const waiter = {
          predicate,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(waiter);
        void exited.then(({ code, signal }) => {
          if (!waiters.includes(waiter)) return;
          clearTimeout(timer);
          reject(
            new Error(
              `${entry} exited (${code ?? signal}) before the expected line:\n${lines.slice(-20).join('\n')}`,
            ),
          );
        });
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

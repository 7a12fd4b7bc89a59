/**
 * Runs the fake provider as its own process, for benchmarks and the demo:
 *
 *   node --conditions=development --import tsx tools/fake-provider/src/main.ts --port 8080
 *
 * Prints `fake provider listening on <url>` once ready (scripts wait for that
 * line), and closes cleanly on SIGTERM/SIGINT. Drive it with the
 * `/__control/*` endpoints.
 */
import { createFakeProvider } from './fake-provider.js';
import { parseCliArguments, USAGE } from './cli-options.js';

async function main(): Promise<void> {
  let command;
  try {
    command = parseCliArguments(process.argv.slice(2));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }
  if (command.help) {
    console.log(USAGE);
    return;
  }

  const provider = await createFakeProvider(command.options);
  console.log(`fake provider listening on ${provider.url}`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return; // a second Ctrl-C while closing changes nothing: close() never waits on clients
    stopping = true;
    provider.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`fake provider: failed to close on ${signal}:`, error);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  console.error('fake provider failed to start:', error);
  process.exit(1);
});

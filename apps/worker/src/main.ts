import { loadWorkerConfig } from './config.js';
import { createLogger } from './logger.js';
import { startMoaWorker } from './moa-worker.js';

const config = (() => {
  try {
    return loadWorkerConfig();
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  }
})();
const logger = createLogger(config.logLevel);
const worker = await startMoaWorker({ config, logger }).catch((error: unknown) => {
  // A worker that cannot start (e.g. MOA_FILES_DIR unwritable) says why in one line and stops.
  logger.fatal({ error: error instanceof Error ? error.message : String(error) }, 'worker failed to start');
  process.exit(1);
});

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: no new jobs, finishing in-flight ones');
    worker
      .close()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        logger.error({ error: String(error) }, 'shutdown failed');
        process.exit(1);
      });
  });
}

export { startMoaWorker, type MoaWorker, type MoaWorkerOptions } from './moa-worker.js';
export { loadWorkerConfig, type WorkerConfig } from './config.js';
export {
  createWorkerMetrics,
  LLM_LATENCY_BUCKETS,
  type WorkerMetrics,
  type WorkerMetricsOptions,
} from './metrics.js';
export { createCallProcessor } from './call-processor.js';
export { createOrchestratorProcessor } from './orchestrator-processor.js';
export { createLogger } from './logger.js';
export { createBatchItemSweeper, mayForget, type SweepReport } from './batches/batch-item-sweeper.js';

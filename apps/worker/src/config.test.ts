import { describe, expect, it } from 'vitest';
import { loadWorkerConfig } from './config.js';

describe('loadWorkerConfig', () => {
  it('has the documented defaults', () => {
    const config = loadWorkerConfig({});
    expect(config).toMatchObject({
      redisUrl: 'redis://127.0.0.1:6379',
      metricsPort: 9464,
      metricsHost: '0.0.0.0',
      queuePrefix: 'moa',
      concurrency: 50,
      shutdownGraceMs: 60_000,
      lockDurationMs: 30_000,
      stalledIntervalMs: 15_000,
      maxStalledCount: 5,
      reconcileIntervalMs: 60_000,
      batchItemGraceMs: 30_000,
      logLevel: 'info',
      webhookSecret: undefined,
      filesDir: undefined,
    });
    expect(Object.keys(config.moa.presets)).toEqual(expect.arrayContaining(['moa', 'moa-lite', 'self-moa']));
  });

  it('reads every variable', () => {
    const config = loadWorkerConfig({
      REDIS_URL: 'redis://redis:6380',
      METRICS_PORT: '9999',
      WORKER_CONCURRENCY: '8',
      SHUTDOWN_GRACE_MS: '5000',
      MOA_QUEUE_PREFIX: '{moa}',
      MOA_WEBHOOK_SECRET: 'whsec_c2VjcmV0',
      LOG_LEVEL: 'debug',
      WORKER_RECONCILE_INTERVAL_MS: '5000',
      BATCH_ITEM_GRACE_MS: '0',
      MOA_FILES_DIR: '/data/files',
    });
    expect(config).toMatchObject({
      redisUrl: 'redis://redis:6380',
      metricsPort: 9999,
      concurrency: 8,
      shutdownGraceMs: 5000,
      queuePrefix: '{moa}',
      webhookSecret: 'whsec_c2VjcmV0',
      logLevel: 'debug',
      reconcileIntervalMs: 5000,
      batchItemGraceMs: 0,
      filesDir: '/data/files',
    });
  });

  it('names the variable that is wrong, and treats empty as unset', () => {
    expect(() => loadWorkerConfig({ WORKER_CONCURRENCY: 'many' })).toThrow(/WORKER_CONCURRENCY/);
    expect(() => loadWorkerConfig({ METRICS_PORT: '70000' })).toThrow(/METRICS_PORT/);
    expect(() => loadWorkerConfig({ MOA_WEBHOOK_SECRET: 'plain' })).toThrow(/MOA_WEBHOOK_SECRET/);
    // A relative directory would depend on each process's working directory: API and workers could disagree.
    expect(() => loadWorkerConfig({ MOA_FILES_DIR: 'data/files' })).toThrow(
      /MOA_FILES_DIR: must be an absolute path/,
    );
    expect(() => loadWorkerConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
    expect(() => loadWorkerConfig({ BATCH_ITEM_GRACE_MS: '-1' })).toThrow(/BATCH_ITEM_GRACE_MS/);
    expect(loadWorkerConfig({ METRICS_PORT: '' }).metricsPort).toBe(9464);
  });

  it('stops on a bad config file, naming it', () => {
    expect(() => loadWorkerConfig({ MOA_CONFIG: '/nonexistent/moa.yaml' })).toThrow(/moa\.yaml/);
  });
});

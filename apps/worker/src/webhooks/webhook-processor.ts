import {
  deliveriesKey,
  isFinished,
  jobView,
  readRequest,
  type MoaQueues,
  type WebhookJobData,
} from '@moa-queue/contract';
import type { WebhookSettings } from '@moa-queue/moa';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { WorkerMetrics } from '../metrics.js';
import { compileAllowList } from './address-policy.js';
import { deliverWebhook, type Resolver } from './deliver-webhook.js';
import { WebhookBlockedError } from './webhook-blocked-error.js';
import { decodeWebhookSecret, signWebhook } from './webhook-signature.js';

/** What the webhook processor needs. */
export interface WebhookDependencies {
  queues: MoaQueues;
  redis: Redis;
  settings: WebhookSettings;
  /** `MOA_WEBHOOK_SECRET`; without it nothing can be signed and deliveries fail. */
  secret: string | undefined;
  metrics: WorkerMetrics;
  logger: Logger;
  resolver?: Resolver;
}

/** Delivery records live as long as the request they describe (7 days). */
const DELIVERIES_TTL_SECONDS = 7 * 24 * 3600;

/** Delay before webhook retry number `attemptsMade`: the configured schedule, then hourly. */
export function webhookRetryDelayMs(settings: WebhookSettings, attemptsMade: number): number {
  return settings.retryScheduleMs[attemptsMade - 1] ?? 3_600_000;
}

/**
 * Delivers a finished request's job object to its webhook, signed per the
 * Standard Webhooks spec. The `webhook-id` is the same on every attempt so
 * receivers can drop duplicates; each attempt is recorded on the job object.
 * Non-2xx and network errors are retried on the schedule until the horizon;
 * a blocked (private) target is refused for good.
 */
export function createWebhookProcessor(dependencies: WebhookDependencies) {
  const allowList = compileAllowList(dependencies.settings.allowHosts);
  const key = dependencies.secret ? decodeWebhookSecret(dependencies.secret) : undefined;
  const { queues, redis, metrics } = dependencies;

  async function record(job: Job<WebhookJobData, void>, statusCode: number | null): Promise<void> {
    const listKey = deliveriesKey(queues.prefix, job.data.requestId);
    const entry = {
      attempt: job.attemptsMade + 1,
      at: Math.floor(Date.now() / 1000),
      status_code: statusCode,
    };
    await redis.multi().rpush(listKey, JSON.stringify(entry)).expire(listKey, DELIVERIES_TTL_SECONDS).exec();
  }

  return async function processWebhook(job: Job<WebhookJobData, void>, token?: string): Promise<void> {
    const { requestId, url } = job.data;
    const log = dependencies.logger.child({ requestId, attempt: job.attemptsMade + 1 });
    if (Date.now() - job.timestamp > dependencies.settings.retryHorizonMs) {
      metrics.webhookDeliveries.inc({ outcome: 'expired' });
      throw new UnrecoverableError(
        `webhook delivery gave up after ${dependencies.settings.retryHorizonMs} ms`,
      );
    }
    if (!key) {
      metrics.webhookDeliveries.inc({ outcome: 'failure' });
      throw new UnrecoverableError('MOA_WEBHOOK_SECRET is not set on the worker: webhooks cannot be signed');
    }
    const snapshot = await readRequest(queues, redis, requestId);
    if (!snapshot) throw new UnrecoverableError(`request ${requestId} no longer exists`);
    if (!isFinished(snapshot)) {
      // The orchestrator queues this just before it finishes: wait for the final state, without spending an attempt.
      await job.moveToDelayed(Date.now() + 250, token);
      throw new DelayedError();
    }
    // Deliveries list the attempts before this one; the receiver sees what was known when it was sent.
    const body = JSON.stringify(jobView(snapshot));
    const webhookId = `msg_${requestId}`;
    const timestamp = Math.floor(Date.now() / 1000);
    let statusCode: number;
    try {
      statusCode = await deliverWebhook({
        url,
        body,
        allowList,
        resolver: dependencies.resolver,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'moa-queue-webhooks/1',
          'webhook-id': webhookId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(key, webhookId, timestamp, body),
        },
      });
    } catch (error) {
      await record(job, null);
      if (error instanceof WebhookBlockedError) {
        metrics.webhookDeliveries.inc({ outcome: 'blocked' });
        log.warn({ error: error.message }, 'webhook target refused');
        throw new UnrecoverableError(error.message);
      }
      metrics.webhookDeliveries.inc({ outcome: 'failure' });
      log.warn({ error: (error as Error).message }, 'webhook delivery failed: will retry');
      throw error;
    }
    await record(job, statusCode);
    if (statusCode >= 200 && statusCode < 300) {
      metrics.webhookDeliveries.inc({ outcome: 'success' });
      log.info({ statusCode }, 'webhook delivered');
      return;
    }
    metrics.webhookDeliveries.inc({ outcome: 'failure' });
    log.warn({ statusCode }, 'webhook answered non-2xx: will retry');
    throw new Error(`webhook answered HTTP ${statusCode}`);
  };
}

import {
  compileAllowList,
  deliveriesKey,
  isFinished,
  jobView,
  ownerTenant,
  readRequest,
  webhookJobDataSchema,
  type MoaQueues,
  type WebhookDeliveryView,
  type WebhookJobData,
} from '@moa-queue/contract';
import type { TenantSettings, WebhookSettings } from '@moa-queue/moa';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { WorkerMetrics } from '../metrics.js';
import { describeDeliveryError } from './delivery-error.js';
import { deliverWebhook, type Resolver } from './deliver-webhook.js';
import { WebhookBlockedError } from './webhook-blocked-error.js';
import { signingKeys, signWebhook } from './webhook-signature.js';
import { expectJobData, parseJobData } from '../parse-job-data.js';

/** What the webhook processor needs. */
export interface WebhookDependencies {
  queues: MoaQueues;
  redis: Redis;
  settings: WebhookSettings;
  /** `MOA_WEBHOOK_SECRET`: signs the webhooks of tenants without a secret of their own. */
  secret: string | undefined;
  /** The config file's `tenants`: a tenant's `webhookSecret` signs that tenant's webhooks. */
  tenants: Record<string, TenantSettings>;
  metrics: WorkerMetrics;
  logger: Logger;
  resolver?: Resolver;
  /** Limit on one delivery attempt. @defaultValue 10000 */
  timeoutMs?: number;
}

/** Delivery records live as long as the request they describe (7 days). */
const DELIVERIES_TTL_SECONDS = 7 * 24 * 3600;

/** Delay before webhook retry number `attemptsMade`: the configured schedule, then hourly. */
export function webhookRetryDelayMs(settings: WebhookSettings, attemptsMade: number): number {
  return settings.retryScheduleMs[attemptsMade - 1] ?? 3_600_000;
}

/**
 * Delivers a finished request's job object to its webhook, signed per the
 * Standard Webhooks spec with the owner tenant's secret, or
 * `MOA_WEBHOOK_SECRET` when the tenant has none. The `webhook-id` is the
 * same on every attempt so receivers can drop duplicates; each attempt is
 * recorded on the job object with its status and, unless it was a 2xx, why
 * it failed. Non-2xx and network errors are retried on the schedule until
 * the horizon; a blocked (private) target or a missing secret fails for good.
 * Secrets are decoded here, so a malformed one stops the worker at start.
 */
export function createWebhookProcessor(dependencies: WebhookDependencies) {
  const allowList = compileAllowList(dependencies.settings.allowHosts);
  const keyOf = signingKeys(dependencies.tenants, dependencies.secret);
  const { queues, redis, metrics } = dependencies;

  async function record(
    job: Job<WebhookJobData, void>,
    statusCode: number | null,
    error: string | null,
  ): Promise<void> {
    const listKey = deliveriesKey(queues.prefix, job.data.requestId);
    const entry: WebhookDeliveryView = {
      attempt: job.attemptsMade + 1,
      at: Math.floor(Date.now() / 1000),
      status_code: statusCode,
      error,
    };
    await redis.multi().rpush(listKey, JSON.stringify(entry)).expire(listKey, DELIVERIES_TTL_SECONDS).exec();
  }

  return async function processWebhook(job: Job<WebhookJobData, void>, token?: string): Promise<void> {
    const { requestId, url } = parseJobData(webhookJobDataSchema, job.data);
    // A webhook job added by hand for a real request must not send its signed result elsewhere.
    expectJobData(job.id === `${requestId}-webhook`, 'requestId', 'is not the request of this job');
    const log = dependencies.logger.child({ requestId, attempt: job.attemptsMade + 1 });
    if (Date.now() - job.timestamp > dependencies.settings.retryHorizonMs) {
      metrics.webhookDeliveries.inc({ outcome: 'expired' });
      const reason = `gave up after ${dependencies.settings.retryHorizonMs} ms of retries`;
      await record(job, null, reason);
      throw new UnrecoverableError(`webhook delivery ${reason}`);
    }
    const snapshot = await readRequest(queues, redis, requestId);
    if (!snapshot) throw new UnrecoverableError(`request ${requestId} no longer exists`);
    expectJobData(snapshot.data.webhook?.url === url, 'url', "is not the request's webhook url");
    if (!isFinished(snapshot)) {
      // The orchestrator queues this just before it finishes: wait for the final state, without spending an attempt.
      await job.moveToDelayed(Date.now() + 250, token);
      throw new DelayedError();
    }
    // The owner comes from the request itself, never from the webhook job; a request from before tenants is `default`'s.
    const tenant = ownerTenant(snapshot.data.tenant);
    const key = keyOf(tenant);
    if (!key) {
      metrics.webhookDeliveries.inc({ outcome: 'failure' });
      const reason = 'no signing secret: the tenant has no webhookSecret and MOA_WEBHOOK_SECRET is not set';
      await record(job, null, reason);
      log.error({ tenant }, 'webhook cannot be signed');
      throw new UnrecoverableError(reason);
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
        timeoutMs: dependencies.timeoutMs,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'moa-queue-webhooks/1',
          'webhook-id': webhookId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(key, webhookId, timestamp, body),
        },
      });
    } catch (error) {
      const reason = describeDeliveryError(error);
      await record(job, null, reason);
      if (error instanceof WebhookBlockedError) {
        metrics.webhookDeliveries.inc({ outcome: 'blocked' });
        log.warn({ error: reason }, 'webhook target refused');
        throw new UnrecoverableError(reason);
      }
      metrics.webhookDeliveries.inc({ outcome: 'failure' });
      log.warn({ error: reason, detail: (error as Error).message }, 'webhook delivery failed: will retry');
      throw new Error(`webhook delivery failed: ${reason}`, { cause: error });
    }
    const ok = statusCode >= 200 && statusCode < 300;
    await record(job, statusCode, ok ? null : `HTTP ${statusCode}`);
    if (ok) {
      metrics.webhookDeliveries.inc({ outcome: 'success' });
      log.info({ statusCode }, 'webhook delivered');
      return;
    }
    metrics.webhookDeliveries.inc({ outcome: 'failure' });
    log.warn({ statusCode }, 'webhook answered non-2xx: will retry');
    throw new Error(`webhook answered HTTP ${statusCode}`);
  };
}

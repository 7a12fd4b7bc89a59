import {
  aggregatorOptionsOf,
  policyOverridesOf,
  compileAllowList,
  jobView,
  literalWebhookAddressBlocked,
  maxTokensOf,
  webhookSecretFor,
  type MoaQueues,
} from '@moa-queue/contract';
import { resolvePreset, type MoaConfig, type PresetConfig } from '@moa-queue/moa';
import { strictRouter } from '../strict-router.js';
import { principalOf, type Principal } from '../principal.js';
import type { Redis } from 'ioredis';
import { ApiError } from '../api-error.js';
import { followRequest, resumedAfterEnd } from '../follow-request.js';
import { claimIdempotencyKey, guardedCreate, type IdempotencyClaim } from '../idempotency.js';
import { methodNotAllowed } from '../middleware/error-handler.js';
import { newRequestData } from '../new-request.js';
import { createJobSchema } from '../request-schema.js';
import type { RequestStore } from '../request-store.js';
import { startSse } from '../sse.js';
import { isStreamId, streamIdAfter } from '../stream-hub.js';
import { acquireStreamLease } from '../stream-leases.js';
import { parseOrThrow } from '../validation.js';

/** What the jobs routes need. */
export interface JobsRouteDependencies {
  store: RequestStore;
  config: MoaConfig;
  queues: MoaQueues;
  redis: Redis;
  /** `MOA_WEBHOOK_SECRET`: signs the webhooks of tenants without a secret of their own. */
  webhookSecret: string | undefined;
}

function notFound(id: string): ApiError {
  return new ApiError(
    404,
    `No job with id ${JSON.stringify(id)}`,
    'invalid_request_error',
    'id',
    'job_not_found',
  );
}

/** How long an `EventSource` waits before it reconnects (the stream's `retry:`). */
export const SSE_RETRY_MS = 3000;

/** A `Last-Event-ID` header: undefined when absent, else a stream entry id or a 400. */
function lastEventIdOf(header: string | undefined): string | undefined {
  const value = header?.trim();
  if (!value) return undefined;
  if (isStreamId(value)) return value;
  throw new ApiError(
    400,
    'Invalid Last-Event-ID: expected the id of an event of this stream, as <milliseconds>-<sequence>',
    'invalid_request_error',
    'Last-Event-ID',
    'invalid_last_event_id',
  );
}

/** The preset a request names, or a 400 naming the field. */
export function presetOrThrow(config: MoaConfig, name: string | undefined, param: string): PresetConfig {
  const preset = resolvePreset(config, name);
  if (preset) return preset;
  throw new ApiError(
    400,
    `Unknown preset ${JSON.stringify(name)}; available: ${Object.keys(config.presets).join(', ')}`,
    'invalid_request_error',
    param,
    'unknown_preset',
  );
}

/** Waits briefly for a job another request is creating under the same idempotency key. */
async function waitForJob(store: RequestStore, requestId: string, caller: Principal) {
  for (let waited = 0; waited < 5000; waited += 50) {
    const snapshot = await store.get(requestId, caller);
    if (snapshot) return snapshot;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new ApiError(
    409,
    'A request with this Idempotency-Key is still being created; retry',
    'invalid_request_error',
    'Idempotency-Key',
    'idempotency_key_in_use',
  );
}

/** `POST /v1/jobs`, `GET /v1/jobs/{id}`, `DELETE /v1/jobs/{id}`, `GET /v1/jobs/{id}/events`. */
export function jobsRouter(dependencies: JobsRouteDependencies) {
  const router = strictRouter();
  const { store } = dependencies;
  const webhookAllowList = compileAllowList(dependencies.config.webhooks.allowHosts);

  router
    .route('/v1/jobs')
    .post(async (request, response) => {
      const caller = principalOf(response);
      const body = parseOrThrow(createJobSchema, request.body);
      const preset = presetOrThrow(dependencies.config, body.preset, 'preset');
      if (
        body.webhook &&
        !webhookSecretFor(dependencies.config.tenants, caller.tenant, dependencies.webhookSecret)
      ) {
        throw new ApiError(
          400,
          'Webhooks are not enabled for this key: neither MOA_WEBHOOK_SECRET nor a tenant secret is set',
          'invalid_request_error',
          'webhook',
          'webhooks_disabled',
        );
      }
      // A literal address the delivery guard would block is refused now, not accepted and failed later.
      const blocked = body.webhook && literalWebhookAddressBlocked(body.webhook.url, webhookAllowList);
      if (blocked) {
        throw new ApiError(
          400,
          `Invalid webhook.url: ${blocked}; private, loopback and link-local targets are refused`,
          'invalid_request_error',
          'webhook.url',
          'webhook_url_blocked',
        );
      }
      const data = newRequestData({
        tenant: caller.tenant,
        preset,
        messages: body.messages,
        metadata: body.metadata,
        webhook: body.webhook,
        source: 'jobs',
        maxTokens: maxTokensOf(body),
        aggregatorOptions: aggregatorOptionsOf(body),
        policies: policyOverridesOf(body.moa),
      });
      const idempotencyKey = request.get('idempotency-key');
      let claim: IdempotencyClaim | undefined;
      if (idempotencyKey !== undefined) {
        claim = await claimIdempotencyKey(
          dependencies.redis,
          dependencies.queues.prefix,
          caller.tenant,
          idempotencyKey,
          request.body,
          data.requestId,
        );
        if (claim.kind === 'existing') {
          const existing = await waitForJob(store, claim.requestId, caller);
          response
            .status(202)
            .location(`/v1/jobs/${claim.requestId}`)
            .set('idempotent-replayed', 'true')
            .json(jobView(existing));
          return;
        }
      }
      // A create that fails gives the key back, so a retry with the same key and body creates the job.
      const snapshot = await guardedCreate(claim, () => store.create(data));
      response.status(202).location(`/v1/jobs/${snapshot.data.requestId}`).json(jobView(snapshot));
    })
    .all(methodNotAllowed(['POST']));

  router
    .route('/v1/jobs/:id')
    .get(async (request, response) => {
      const snapshot = await store.get(request.params.id, principalOf(response));
      if (!snapshot) throw notFound(request.params.id);
      response.json(jobView(snapshot));
    })
    .delete(async (request, response) => {
      const snapshot = await store.cancel(request.params.id, principalOf(response));
      if (!snapshot) throw notFound(request.params.id);
      if (snapshot.status !== 'cancelled') {
        throw new ApiError(
          409,
          `Job ${snapshot.data.requestId} has already ${snapshot.status === 'failed' ? 'failed' : 'completed'}`,
          'invalid_request_error',
          'id',
          'job_finished',
        );
      }
      response.json(jobView(snapshot));
    })
    .all(methodNotAllowed(['GET', 'DELETE']));

  router
    .route('/v1/jobs/:id/events')
    .get(async (request, response) => {
      const requestId = request.params.id;
      const caller = principalOf(response);
      const initial = await store.get(requestId, caller);
      if (!initial) throw notFound(requestId);
      const lastEventId = lastEventIdOf(request.get('last-event-id'));
      // A client that has seen the end only reconnects because EventSource does: 204 stops it.
      if (
        lastEventId !== undefined &&
        (await resumedAfterEnd(dependencies.redis, dependencies.queues, initial, lastEventId))
      ) {
        response.status(204).end();
        return;
      }
      const lease = await acquireStreamLease(dependencies, caller.tenant);
      try {
        const sse = startSse(response, { retryMs: SSE_RETRY_MS });
        const stopped = new AbortController();
        response.on('close', () => stopped.abort());
        // Gone already (while the lease was taken): its close event has passed.
        if (!response.socket || response.socket.destroyed) stopped.abort();
        let sawDone = false;
        const { snapshot, lastId } = await followRequest(dependencies.redis, dependencies.queues, requestId, {
          signal: stopped.signal,
          afterId: lastEventId ?? '0',
          initial,
          onEvent(event, id) {
            if (event.type === 'delta') return;
            if (event.type === 'done') sawDone = true;
            sse.write(JSON.stringify(event), event.type, id);
          },
        });
        // The stream may have expired after a long retention: the job's state still tells how it ended.
        // Its id follows the last one sent, so a reconnect after it is answered 204.
        if (!sawDone && snapshot && ['completed', 'failed', 'cancelled'].includes(snapshot.status)) {
          sse.write(JSON.stringify({ type: 'done', status: snapshot.status }), 'done', streamIdAfter(lastId));
        }
        sse.end();
      } finally {
        await lease.release();
      }
    })
    .all(methodNotAllowed(['GET']));

  return router;
}

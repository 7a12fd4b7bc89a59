import { newRequestId } from '@moa-queue/contract';
import { resolvePreset, type MoaConfig } from '@moa-queue/moa';
import { Router } from 'express';
import { ApiError } from '../api-error.js';
import { jobView } from '../job-view.js';
import { methodNotAllowed } from '../middleware/error-handler.js';
import { createJobSchema } from '../request-schema.js';
import type { RequestStore } from '../request-store.js';
import { parseOrThrow } from '../validation.js';

/** What the jobs routes need. */
export interface JobsRouteDependencies {
  store: RequestStore;
  config: MoaConfig;
  /** Webhooks are refused unless a signing secret is configured. */
  webhookSecretConfigured: boolean;
}

function notFound(id: string): ApiError {
  return new ApiError(404, `No job with id ${JSON.stringify(id)}`, 'invalid_request_error', 'id', 'job_not_found');
}

/** `POST /v1/jobs`, `GET /v1/jobs/{id}`, `DELETE /v1/jobs/{id}`. */
export function jobsRouter(dependencies: JobsRouteDependencies): Router {
  const router = Router();

  router
    .route('/v1/jobs')
    .post(async (request, response) => {
      const body = parseOrThrow(createJobSchema, request.body);
      const preset = resolvePreset(dependencies.config, body.preset);
      if (!preset) {
        throw new ApiError(
          400,
          `Unknown preset ${JSON.stringify(body.preset)}; available: ${Object.keys(dependencies.config.presets).join(', ')}`,
          'invalid_request_error',
          'preset',
          'unknown_preset',
        );
      }
      if (body.webhook && !dependencies.webhookSecretConfigured) {
        throw new ApiError(
          400,
          'Webhooks are not enabled on this server (MOA_WEBHOOK_SECRET is not set)',
          'invalid_request_error',
          'webhook',
          'webhooks_disabled',
        );
      }
      const snapshot = await dependencies.store.create({
        requestId: newRequestId(),
        preset,
        messages: body.messages,
        metadata: body.metadata ?? {},
        ...(body.webhook ? { webhook: { url: body.webhook.url } } : {}),
        createdAt: Date.now(),
      });
      response.status(202).location(`/v1/jobs/${snapshot.data.requestId}`).json(jobView(snapshot));
    })
    .all(methodNotAllowed(['POST']));

  router
    .route('/v1/jobs/:id')
    .get(async (request, response) => {
      const snapshot = await dependencies.store.get(request.params.id);
      if (!snapshot) throw notFound(request.params.id);
      response.json(jobView(snapshot));
    })
    .delete(async (request, response) => {
      const snapshot = await dependencies.store.cancel(request.params.id);
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

  return router;
}

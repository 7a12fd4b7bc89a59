import {
  aggregatorOptionsOf,
  chatChunk,
  chatCompletionOf,
  failureMayRecover,
  finishReasonOf,
  jobView,
  maxTokensOf,
  usageChunk,
  type MoaQueues,
  type RequestSnapshot,
} from '@moa-queue/contract';
import type { ChatFinishReason, MoaConfig } from '@moa-queue/moa';
import { strictRouter } from '../strict-router.js';
import { principalOf } from '../principal.js';
import type { Redis } from 'ioredis';
import { ApiError } from '../api-error.js';
import { chatCompletionSchema } from '../chat-schema.js';
import { followRequest } from '../follow-request.js';
import { methodNotAllowed } from '../middleware/error-handler.js';
import { newRequestData } from '../new-request.js';
import type { RequestStore } from '../request-store.js';
import { startSse } from '../sse.js';
import { acquireStreamLease } from '../stream-leases.js';
import { parseOrThrow } from '../validation.js';

/** What the chat completions route needs. */
export interface ChatRouteDependencies {
  store: RequestStore;
  config: MoaConfig;
  queues: MoaQueues;
  redis: Redis;
  /** How long a completion waits for its request before answering 504. */
  timeoutMs: number;
}

/**
 * The OpenAI error for a request that did not complete. A failed run is a
 * 502 whose code is the job's (`too_few_proposers`, `aggregator_failed`,
 * `cost_cap_exceeded`, …, else `moa_failed`), with `x-should-retry` saying
 * whether sending the same request again can help (`failureMayRecover`):
 * `false` for a deterministic failure, so that an SDK's automatic retries
 * never pay again for a run that would fail the same way.
 */
function failure(snapshot: RequestSnapshot | undefined, timedOut: boolean, timeoutMs: number): ApiError {
  if (timedOut || !snapshot) {
    return new ApiError(
      504,
      `The MoA request did not finish within ${timeoutMs} ms; it goes on as job ${snapshot?.data.requestId ?? 'unknown'}`,
      'timeout_error',
      null,
      'timeout',
    );
  }
  const view = jobView(snapshot);
  const error = view.error;
  if (snapshot.status === 'cancelled') {
    return new ApiError(
      409,
      error?.message ?? 'the request was cancelled',
      'invalid_request_error',
      null,
      'cancelled',
    );
  }
  return new ApiError(
    502,
    error?.message ?? 'the MoA request failed',
    'server_error',
    null,
    error?.code ?? 'moa_failed',
    { 'x-should-retry': String(failureMayRecover(view)) },
  );
}

/**
 * `POST /v1/chat/completions`, where `model` names a preset. The request
 * runs on the workers like any job; this replica only waits for it (and, when
 * streaming, relays the aggregator's tokens from Redis). A client that goes
 * away does not stop the job.
 */
export function chatCompletionsRouter(dependencies: ChatRouteDependencies) {
  const router = strictRouter();
  router
    .route('/v1/chat/completions')
    .post(async (request, response) => {
      const body = parseOrThrow(chatCompletionSchema, request.body);
      const preset = Object.hasOwn(dependencies.config.presets, body.model)
        ? dependencies.config.presets[body.model]
        : undefined;
      if (!preset) {
        throw new ApiError(
          404,
          `The model ${JSON.stringify(body.model)} does not exist; models are presets: ${Object.keys(dependencies.config.presets).join(', ')}`,
          'invalid_request_error',
          'model',
          'model_not_found',
        );
      }
      // A waiting completion is one of its tenant's streams (maxStreams): refused before its job is made.
      const lease = await acquireStreamLease(dependencies, principalOf(response).tenant);
      response.on('close', () => void lease.release());
      const data = newRequestData({
        tenant: principalOf(response).tenant,
        preset,
        messages: body.messages,
        metadata: body.metadata ?? undefined,
        stream: body.stream === true,
        source: 'chat',
        maxTokens: maxTokensOf(body),
        aggregatorOptions: aggregatorOptionsOf(body),
      });
      await dependencies.store.create(data);
      response.set('x-moa-job-id', data.requestId);
      const clientGone = new AbortController();
      response.on('close', () => {
        if (!response.writableFinished) clientGone.abort();
      });
      // Gone already (while its job was being made): its close event has passed.
      if (!response.socket || response.socket.destroyed) clientGone.abort();

      if (!body.stream) {
        const { snapshot, timedOut } = await followRequest(
          dependencies.redis,
          dependencies.queues,
          data.requestId,
          {
            signal: clientGone.signal,
            timeoutMs: dependencies.timeoutMs,
          },
        );
        if (clientGone.signal.aborted) return;
        if (snapshot?.status !== 'completed' || timedOut)
          throw failure(snapshot, timedOut, dependencies.timeoutMs);
        response.json(chatCompletionOf(jobView(snapshot)));
        return;
      }

      const created = Math.floor(data.createdAt / 1000);
      const sse = startSse(response);
      const writeChunk = (
        delta: { role?: 'assistant'; content?: string },
        finishReason: ChatFinishReason | null = null,
      ) => sse.write(JSON.stringify(chatChunk(data.requestId, preset.name, created, delta, finishReason)));
      writeChunk({ role: 'assistant', content: '' });
      /** The aggregator attempt whose tokens are being relayed (set by the first delta). */
      let attempt: number | undefined;
      let restarted = false;
      const { snapshot, timedOut } = await followRequest(
        dependencies.redis,
        dependencies.queues,
        data.requestId,
        {
          signal: clientGone.signal,
          timeoutMs: dependencies.timeoutMs,
          onEvent(event) {
            if (event.type !== 'delta' || restarted) return;
            // A retried aggregator starts over; text already sent cannot be taken back.
            if (attempt !== undefined && event.attempt !== attempt) {
              restarted = true;
              return;
            }
            attempt = event.attempt;
            writeChunk({ content: event.text });
          },
        },
      );
      if (clientGone.signal.aborted) return;
      if (snapshot?.status === 'completed' && !timedOut && !restarted) {
        const view = jobView(snapshot);
        writeChunk({}, finishReasonOf(view));
        if (body.stream_options?.include_usage) sse.write(JSON.stringify(usageChunk(view, created)));
      } else {
        const error = restarted
          ? new ApiError(
              502,
              'the aggregator failed midway and was retried; its partial answer cannot be retracted',
              'server_error',
              null,
              'stream_restarted',
            )
          : failure(snapshot, timedOut, dependencies.timeoutMs);
        sse.write(JSON.stringify(error.toBody()));
      }
      sse.write('[DONE]');
      sse.end();
    })
    .all(methodNotAllowed(['POST']));
  return router;
}

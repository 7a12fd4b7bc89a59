import { jobView, failureMayRecover, type MoaQueues, type RequestSnapshot } from '@moa-queue/contract';
import type { MoaConfig, PresetConfig } from '@moa-queue/moa';
import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import { ApiError } from './api-error.js';
import type { FailureReplay } from './failure-replay.js';
import { followRequest } from './follow-request.js';
import { newRequestData, type NewRequestOptions } from './new-request.js';
import { principalOf } from './principal.js';
import type { RequestStore } from './request-store.js';
import { acquireStreamLease } from './stream-leases.js';

/*
 * What the OpenAI-shaped routes that wait for a MoA request share (chat
 * completions, responses): the preset named by `model`, the stream lease, the
 * job, following it, relaying the aggregator's deltas, and the error of a
 * request that did not complete.
 */

/** What a waiting route needs. */
export interface MoaRunDependencies {
  store: RequestStore;
  config: MoaConfig;
  queues: MoaQueues;
  redis: Redis;
  /** How long a route waits for its request before answering 504. */
  timeoutMs: number;
  /** Answers a repeated deterministic failure without running it again. */
  failureReplay: FailureReplay;
}

/** The preset `model` names, else 404 `model_not_found`. */
export function presetOf(config: MoaConfig, model: string): PresetConfig {
  const preset = Object.hasOwn(config.presets, model) ? config.presets[model] : undefined;
  if (!preset) {
    throw new ApiError(
      404,
      `The model ${JSON.stringify(model)} does not exist; models are presets: ${Object.keys(config.presets).join(', ')}`,
      'invalid_request_error',
      'model',
      'model_not_found',
    );
  }
  return preset;
}

/**
 * The OpenAI error for a request that did not complete. A failed run is a
 * 502 whose code is the job's (`too_few_proposers`, `aggregator_failed`,
 * `cost_cap_exceeded`, …, else `moa_failed`), with `x-should-retry` saying
 * whether sending the same request again can help (`failureMayRecover`):
 * `false` for a deterministic failure, so that an SDK's automatic retries
 * never pay again for a run that would fail the same way.
 */
export function runFailure(
  snapshot: RequestSnapshot | undefined,
  timedOut: boolean,
  timeoutMs: number,
): ApiError {
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
 * Throws the remembered answer when the caller sent this exact body to this
 * route and it failed deterministically a short while ago (an SDK retrying
 * a 502 it was told not to retry): no second run is made or paid for.
 */
export async function refuseRepeatedFailure(
  dependencies: MoaRunDependencies,
  request: Request,
  response: Response,
): Promise<void> {
  const replayed = await dependencies.failureReplay.find(
    principalOf(response).tenant,
    request.path,
    request.body,
  );
  if (replayed) throw replayed;
}

/** {@link runFailure}, remembered for {@link refuseRepeatedFailure} when it is deterministic. */
export async function rememberedFailure(
  dependencies: MoaRunDependencies,
  request: Request,
  response: Response,
  run: StartedRun,
  error: ApiError,
): Promise<ApiError> {
  await dependencies.failureReplay.remember(
    principalOf(response).tenant,
    request.path,
    request.body,
    run.data.requestId,
    error,
  );
  return error;
}

/**
 * Follows a waiting (not streamed) run to its end: the completed request's
 * snapshot, or undefined when the client went away; any other end throws
 * its error answer ({@link runFailure}), remembered when it is deterministic.
 */
export async function completedRun(
  dependencies: MoaRunDependencies,
  request: Request,
  response: Response,
  run: StartedRun,
): Promise<RequestSnapshot | undefined> {
  const { snapshot, timedOut } = await followRun(dependencies, run);
  if (run.clientGone.aborted) return undefined;
  if (snapshot?.status === 'completed' && !timedOut) return snapshot;
  throw await rememberedFailure(
    dependencies,
    request,
    response,
    run,
    runFailure(snapshot, timedOut, dependencies.timeoutMs),
  );
}

/** The error of a stream whose aggregator was retried after its first tokens were relayed. */
export function streamRestarted(): ApiError {
  return new ApiError(
    502,
    'the aggregator failed midway and was retried; its partial answer cannot be retracted',
    'server_error',
    null,
    'stream_restarted',
  );
}

/** A request made and being waited for. */
export interface StartedRun {
  data: ReturnType<typeof newRequestData>;
  /** Aborted when the client goes away before the answer is written. */
  clientGone: AbortSignal;
}

/**
 * Takes a stream lease (a waiting request is one of its tenant's streams:
 * refused before its job is made), creates the request and sets
 * `x-moa-job-id`.
 */
export async function startRun(
  dependencies: MoaRunDependencies,
  response: Response,
  options: Omit<NewRequestOptions, 'tenant'>,
): Promise<StartedRun> {
  const tenant = principalOf(response).tenant;
  const lease = await acquireStreamLease(dependencies, tenant);
  response.on('close', () => void lease.release());
  const data = newRequestData({ ...options, tenant });
  await dependencies.store.create(data);
  response.set('x-moa-job-id', data.requestId);
  const clientGone = new AbortController();
  response.on('close', () => {
    if (!response.writableFinished) clientGone.abort();
  });
  // Gone already (while its job was being made): its close event has passed.
  if (!response.socket || response.socket.destroyed) clientGone.abort();
  return { data, clientGone: clientGone.signal };
}

/** How a followed run ended. */
export interface RunOutcome {
  snapshot: RequestSnapshot | undefined;
  timedOut: boolean;
  /** The aggregator was retried after text had been relayed (streaming only). */
  restarted: boolean;
}

/**
 * Follows a started run to its end; with `onText`, relays the aggregator's
 * deltas. A retried aggregator starts over, and text already sent cannot be
 * taken back: relaying stops and `restarted` says so.
 */
export async function followRun(
  dependencies: MoaRunDependencies,
  run: StartedRun,
  onText?: (text: string) => void,
): Promise<RunOutcome> {
  let attempt: number | undefined;
  let restarted = false;
  const { snapshot, timedOut } = await followRequest(
    dependencies.redis,
    dependencies.queues,
    run.data.requestId,
    {
      signal: run.clientGone,
      timeoutMs: dependencies.timeoutMs,
      ...(onText
        ? {
            onEvent(event) {
              if (event.type !== 'delta' || restarted) return;
              if (attempt !== undefined && event.attempt !== attempt) {
                restarted = true;
                return;
              }
              attempt = event.attempt;
              onText(event.text);
            },
          }
        : {}),
    },
  );
  return { snapshot, timedOut, restarted };
}

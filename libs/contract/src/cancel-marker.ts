import {
  agentsOfLayer,
  isCancelCause,
  layerCount,
  type CancelCause,
  type PresetConfig,
} from '@moa-queue/moa';
import type { ChainableCommander, Redis } from 'ioredis';
import { callJobId } from './job-ids.js';

/** Redis key whose presence marks a request as cancelled. */
export function cancelKey(prefix: string, requestId: string): string {
  return `${prefix}:moa-cancel:${requestId}`;
}

/** The cancel marker outlives the request's retention, so a late worker still sees it. */
export const CANCEL_MARKER_TTL_SECONDS = 8 * 24 * 3600;

/**
 * Marks a request cancelled (on a connection or a pipeline): every later
 * look at the request, by its orchestrator or one of its calls, sees it.
 */
export function markCancelled(
  redis: Pick<Redis, 'set'> | Pick<ChainableCommander, 'set'>,
  prefix: string,
  requestId: string,
): unknown {
  return redis.set(cancelKey(prefix, requestId), '1', 'EX', CANCEL_MARKER_TTL_SECONDS);
}

/** Redis key whose presence says a layer's straggler deadline has passed. */
export function deadlineKey(prefix: string, requestId: string, layer: number): string {
  return `${prefix}:moa-deadline:${requestId}:L${layer}`;
}

/**
 * Pub/sub channel naming call jobs to abort wherever they run: every worker
 * process listens and aborts the ones it holds (a cancel, or a deadline).
 */
export function cancelCallsChannel(prefix: string): string {
  return `${prefix}:moa-cancel-calls`;
}

/** A message on {@link cancelCallsChannel}: the call jobs to abort and why. */
export interface CallCancels {
  /** Call job ids; a process aborts those it runs and ignores the others. */
  ids: string[];
  cause: CancelCause;
}

/**
 * Asks every worker process to abort these call jobs for `cause`, which
 * reaches each aborted call as its abort reason (cancellation.ts in libs/moa).
 */
export async function publishCallCancels(
  redis: Pick<Redis, 'publish'>,
  prefix: string,
  ids: string[],
  cause: CancelCause,
): Promise<void> {
  if (ids.length === 0) return;
  await redis.publish(cancelCallsChannel(prefix), JSON.stringify({ ids, cause } satisfies CallCancels));
}

/**
 * Reads a message of {@link cancelCallsChannel}; undefined when it is not
 * one. A bare array of ids (what workers sent before causes) is a cancel.
 */
export function parseCallCancels(message: string): CallCancels | undefined {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return undefined;
  }
  const strings = (ids: unknown[]) => ids.filter((id): id is string => typeof id === 'string');
  if (Array.isArray(value)) return { ids: strings(value), cause: 'cancelled' };
  if (typeof value !== 'object' || value === null) return undefined;
  const { ids, cause } = value as { ids?: unknown; cause?: unknown };
  if (!Array.isArray(ids) || !isCancelCause(cause)) return undefined;
  return { ids: strings(ids), cause };
}

/**
 * Every call job id a request can have: each agent of each layer, and the
 * aggregator's second round. What a cancel aborts wherever the request stands.
 */
export function requestCallIds(requestId: string, preset: PresetConfig): string[] {
  const ids: string[] = [];
  for (let layer = 1; layer <= layerCount(preset); layer += 1) {
    agentsOfLayer(preset, layer).forEach((_agent, index) => ids.push(callJobId(requestId, layer, index)));
  }
  ids.push(callJobId(requestId, layerCount(preset), 0, 1));
  return ids;
}

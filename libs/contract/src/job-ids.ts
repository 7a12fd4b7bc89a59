import { randomBytes } from 'node:crypto';
import { callKey } from '@moa-queue/moa';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A new public request id, `job_` and 24 random base62 characters. */
export function newRequestId(): string {
  const bytes = randomBytes(24);
  let suffix = '';
  for (const byte of bytes) suffix += ALPHABET[byte % ALPHABET.length];
  return `job_${suffix}`;
}

/** Request ids are ours: anything else is rejected before it reaches Redis. */
export const REQUEST_ID_PATTERN = /^job_[A-Za-z0-9]{1,64}$/;

/**
 * The deterministic id of one agent call, `<request>-L<layer>-A<agent>`
 * (and `-R<round>` for an aggregator run again, see `callKey`): a retried
 * orchestrator adds the same ids again, which BullMQ ignores, so a finished
 * call is never paid for twice.
 */
export function callJobId(requestId: string, layer: number, agentIndex: number, round = 0): string {
  return `${requestId}-${callKey({ layer, agentIndex, round })}`;
}

/** The parts of a call job id, or undefined when it is not one. */
export function parseCallJobId(
  jobId: string,
): { requestId: string; layer: number; agentIndex: number; round: number } | undefined {
  const match = /^(.+)-L(\d+)-A(\d+)(?:-R([1-9]\d*))?$/.exec(jobId);
  if (!match) return undefined;
  return {
    requestId: match[1] as string,
    layer: Number(match[2]),
    agentIndex: Number(match[3]),
    round: match[4] === undefined ? 0 : Number(match[4]),
  };
}

/** The job id at the end of a BullMQ job key (`<prefix>:<queue>:<id>`). */
export function jobIdFromKey(key: string): string {
  return key.slice(key.lastIndexOf(':') + 1);
}

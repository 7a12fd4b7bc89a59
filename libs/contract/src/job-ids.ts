import { randomBytes } from 'node:crypto';

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
 * The deterministic id of one agent call, `<request>-L<layer>-A<agent>`: a
 * retried orchestrator adds the same ids again, which BullMQ ignores, so a
 * finished call is never paid for twice. A call planned again within its
 * layer (`replan` 1: the aggregator with halved references after its
 * provider refused the prompt for context length) is a new call,
 * `<request>-L<layer>-A<agent>-R<replan>`.
 */
export function callJobId(requestId: string, layer: number, agentIndex: number, replan = 0): string {
  return `${requestId}-L${layer}-A${agentIndex}${replan > 0 ? `-R${replan}` : ''}`;
}

/** The parts of a call job id, or undefined when it is not one. */
export function parseCallJobId(
  jobId: string,
): { requestId: string; layer: number; agentIndex: number; replan: number } | undefined {
  const match = /^(.+)-L(\d+)-A(\d+)(?:-R([1-9]\d*))?$/.exec(jobId);
  if (!match) return undefined;
  return {
    requestId: match[1] as string,
    layer: Number(match[2]),
    agentIndex: Number(match[3]),
    replan: match[4] === undefined ? 0 : Number(match[4]),
  };
}

/** The job id at the end of a BullMQ job key (`<prefix>:<queue>:<id>`). */
export function jobIdFromKey(key: string): string {
  return key.slice(key.lastIndexOf(':') + 1);
}

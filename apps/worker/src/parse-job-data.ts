import { UnrecoverableError } from 'bullmq';
import type { z } from 'zod';

/** How every failure of job data validation starts; the worker logs such failures as warnings. */
export const INVALID_JOB_DATA = 'invalid job data';

/** A failedReason stays readable however long the offending key or value was. */
const MAX_SEGMENT_CHARACTERS = 64;
const MAX_REASON_CHARACTERS = 300;

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** `['preset', 'layers', 0, 0, 'model']` → `preset.layers.0.0.model`. */
function dottedPath(path: readonly PropertyKey[]): string {
  return path.map((segment) => clip(String(segment), MAX_SEGMENT_CHARACTERS)).join('.');
}

/**
 * The error that fails a job whose data is not what our own producers write:
 * unrecoverable, so BullMQ fails it at once without a retry, and its message
 * (the job's failedReason) names the field.
 */
export function invalidJobData(path: string, reason: string, moreIssues = 0): UnrecoverableError {
  const where = path === '' ? '' : `${path}: `;
  const more = moreIssues > 0 ? ` (and ${moreIssues} more issue${moreIssues === 1 ? '' : 's'})` : '';
  return new UnrecoverableError(`${INVALID_JOB_DATA}: ${where}${clip(reason, MAX_REASON_CHARACTERS)}${more}`);
}

/**
 * Parses a job's data before a processor uses any of it; the one place job
 * data is validated. Returns the parsed value (unknown keys stripped, defaults
 * filled in), which is what the processor must use instead of `job.data`.
 *
 * @throws UnrecoverableError `invalid job data: <field>: <reason>` when the data does not match.
 */
export function parseJobData<T>(schema: z.ZodType<T>, data: unknown): T {
  const parsed = schema.safeParse(data);
  if (parsed.success) return parsed.data;
  const [first, ...rest] = parsed.error.issues;
  throw invalidJobData(dottedPath(first?.path ?? []), first?.message ?? 'invalid', rest.length);
}

/**
 * A check of job data against the job itself (its id, its queue), failing
 * the same way as {@link parseJobData}.
 *
 * @throws UnrecoverableError naming `path` when `condition` is false.
 */
export function expectJobData(condition: boolean, path: string, reason: string): asserts condition {
  if (!condition) throw invalidJobData(path, reason);
}

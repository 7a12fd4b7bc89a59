/**
 * A one-shot instruction for the next request to a model, queued with
 * `FakeProvider.script`. Each request consumes at most one action.
 *
 * - `{ status: 429, retryAfterSeconds?, retryAfterMs? }`: a rate limit, with
 *   the `retry-after` / `retry-after-ms` headers clients back off on.
 * - `{ status, message? }`: any error status (400, 401, 500, 503…) with an
 *   OpenAI error body.
 * - `{ hang: true }`: accept the request and never answer, until the client gives up.
 * - `{ hold: true, latencyMs?, content? }`: accept the request and answer
 *   nothing until `FakeProvider.release` lets it go (or the client gives up);
 *   then answer normally, the latency counting from the release. For tests
 *   that must act while a call is provably in flight.
 * - `{ latencyMs }`: answer normally, but only after this delay.
 * - `{ content }`: answer with exactly this text.
 */
export type ScriptedAction =
  | { status: 429; retryAfterSeconds?: number; retryAfterMs?: number; message?: string }
  | { status: number; message?: string }
  | { hang: true }
  | { hold: true; latencyMs?: number; content?: string }
  | { latencyMs: number }
  | { content: string };

/**
 * How a model behaves on every request until changed, set with
 * `FakeProvider.setBehaviour`. A scripted action, when one is queued, takes
 * precedence for that request; `latencyMs` and `content` still apply to
 * whatever the action leaves unspecified.
 */
export interface ModelBehaviour {
  /** Answer every request with this error status. */
  failStatus?: number;
  /** Never answer. */
  hang?: boolean;
  /** Answer only once released by `FakeProvider.release` (see the `hold` action). */
  hold?: boolean;
  /** Wait this long before answering. */
  latencyMs?: number;
  /** Answer with exactly this text. */
  content?: string;
}

/** Thrown when a script or behaviour is malformed; the control endpoints turn it into a 400. */
export class InvalidScriptError extends Error {
  override readonly name = 'InvalidScriptError';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isErrorStatus(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 400 && value <= 599;
}

function isDelay(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/**
 * Checks that `value` is a {@link ScriptedAction} and returns a clean copy.
 * Scripts also arrive as JSON over `/__control/script`, so the shape is
 * checked at run time, not only by the compiler. An action that sets several
 * of `latencyMs`/`content` keeps them all (a slow scripted answer).
 * @throws InvalidScriptError when it is not.
 */
export function parseScriptedAction(value: unknown): ScriptedAction {
  if (!isRecord(value)) throw new InvalidScriptError('a scripted action must be an object');
  if (value.status !== undefined) {
    if (!isErrorStatus(value.status))
      throw new InvalidScriptError('status must be an integer from 400 to 599');
    const failure: { status: number; message?: string; retryAfterSeconds?: number; retryAfterMs?: number } = {
      status: value.status,
    };
    if (value.message !== undefined) {
      if (typeof value.message !== 'string') throw new InvalidScriptError('message must be a string');
      failure.message = value.message;
    }
    for (const key of ['retryAfterSeconds', 'retryAfterMs'] as const) {
      const delay = value[key];
      if (delay === undefined) continue;
      if (!isDelay(delay)) throw new InvalidScriptError(`${key} must be a non-negative number`);
      failure[key] = delay;
    }
    return failure;
  }
  if (value.hang !== undefined) {
    if (value.hang !== true) throw new InvalidScriptError('hang must be true');
    return { hang: true };
  }
  if (value.hold !== undefined && value.hold !== true) throw new InvalidScriptError('hold must be true');
  const answer: { latencyMs?: number; content?: string } = {};
  if (value.latencyMs !== undefined) {
    if (!isDelay(value.latencyMs)) throw new InvalidScriptError('latencyMs must be a non-negative number');
    answer.latencyMs = value.latencyMs;
  }
  if (value.content !== undefined) {
    if (typeof value.content !== 'string') throw new InvalidScriptError('content must be a string');
    answer.content = value.content;
  }
  if (value.hold === true) return { hold: true, ...answer };
  if (answer.latencyMs !== undefined) return { ...answer, latencyMs: answer.latencyMs };
  if (answer.content !== undefined) return { ...answer, content: answer.content };
  throw new InvalidScriptError('a scripted action needs one of status, hang, hold, latencyMs or content');
}

/**
 * Checks that `value` is a {@link ModelBehaviour}; `null`/`undefined` mean "no behaviour".
 * @throws InvalidScriptError when it is not.
 */
export function parseModelBehaviour(value: unknown): ModelBehaviour | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) throw new InvalidScriptError('a behaviour must be an object');
  const behaviour: ModelBehaviour = {};
  if (value.failStatus !== undefined) {
    if (!isErrorStatus(value.failStatus)) {
      throw new InvalidScriptError('failStatus must be an integer from 400 to 599');
    }
    behaviour.failStatus = value.failStatus;
  }
  if (value.hang !== undefined) {
    if (typeof value.hang !== 'boolean') throw new InvalidScriptError('hang must be a boolean');
    behaviour.hang = value.hang;
  }
  if (value.hold !== undefined) {
    if (typeof value.hold !== 'boolean') throw new InvalidScriptError('hold must be a boolean');
    behaviour.hold = value.hold;
  }
  if (value.latencyMs !== undefined) {
    if (!isDelay(value.latencyMs)) throw new InvalidScriptError('latencyMs must be a non-negative number');
    behaviour.latencyMs = value.latencyMs;
  }
  if (value.content !== undefined) {
    if (typeof value.content !== 'string') throw new InvalidScriptError('content must be a string');
    behaviour.content = value.content;
  }
  return behaviour;
}

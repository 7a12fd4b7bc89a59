import type { ModelBehaviour, ScriptedAction } from './scripted-action.js';

/** What the server will do with one chat completion request, after scripts and behaviours are applied. */
export type ResponsePlan =
  | { kind: 'fail'; latencyMs: number; status: number; message?: string; headers: Record<string, string> }
  | { kind: 'hang' }
  | {
      kind: 'answer';
      latencyMs: number;
      content?: string;
      /** Wait for `FakeProvider.release` before the latency starts. */
      hold?: true;
    };

/** Reads an optional field from one member of the action union without narrowing it first. */
function field<T>(action: ScriptedAction | undefined, key: string): T | undefined {
  return action && key in action ? ((action as Record<string, unknown>)[key] as T) : undefined;
}

/**
 * Decides the response to one request. A scripted action wins over the
 * model's behaviour: a request that consumed `{ latencyMs }` answers even
 * while the behaviour says `failStatus`, because scripts describe "the next
 * request", behaviours "every other one"; likewise a consumed action is never
 * held or hung by the behaviour. Latency and content not set by the action
 * fall back to the behaviour, then to `fallbackLatencyMs` (per-model or default).
 */
export function resolveResponsePlan(
  action: ScriptedAction | undefined,
  behaviour: ModelBehaviour | undefined,
  fallbackLatencyMs: number,
): ResponsePlan {
  const latencyMs = field<number>(action, 'latencyMs') ?? behaviour?.latencyMs ?? fallbackLatencyMs;
  const status = action ? field<number>(action, 'status') : behaviour?.failStatus;
  if (status !== undefined) {
    const headers: Record<string, string> = {};
    const retryAfterSeconds = field<number>(action, 'retryAfterSeconds');
    const retryAfterMs = field<number>(action, 'retryAfterMs');
    if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
    if (retryAfterMs !== undefined) headers['retry-after-ms'] = String(retryAfterMs);
    return { kind: 'fail', latencyMs, status, message: field<string>(action, 'message'), headers };
  }
  const hang = action ? field<boolean>(action, 'hang') === true : behaviour?.hang === true;
  if (hang) return { kind: 'hang' };
  const hold = action ? field<boolean>(action, 'hold') === true : behaviour?.hold === true;
  return {
    kind: 'answer',
    latencyMs,
    content: field<string>(action, 'content') ?? behaviour?.content,
    ...(hold ? { hold: true as const } : {}),
  };
}

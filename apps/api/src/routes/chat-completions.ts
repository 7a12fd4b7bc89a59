import {
  aggregatorOptionsOf,
  policyOverridesOf,
  chatChunk,
  chatCompletionOf,
  finishReasonOf,
  jobView,
  maxTokensOf,
  usageChunk,
} from '@moa-queue/contract';
import type { ChatFinishReason } from '@moa-queue/moa';
import { strictRouter } from '../strict-router.js';
import { chatCompletionSchema } from '../chat-schema.js';
import { methodNotAllowed } from '../middleware/error-handler.js';
import {
  followRun,
  presetOf,
  refuseRepeatedFailure,
  completedRun,
  runFailure,
  startRun,
  streamRestarted,
  type MoaRunDependencies,
} from '../moa-run.js';
import { startSse } from '../sse.js';
import { parseOrThrow } from '../validation.js';

/** What the chat completions route needs. */
export type ChatRouteDependencies = MoaRunDependencies;

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
      const preset = presetOf(dependencies.config, body.model);
      // Only a waiting request answers its failure as a status, which SDKs retry.
      if (!body.stream) await refuseRepeatedFailure(dependencies, request, response);
      const run = await startRun(dependencies, response, {
        preset,
        messages: body.messages,
        metadata: body.metadata ?? undefined,
        stream: body.stream === true,
        source: 'chat',
        maxTokens: maxTokensOf(body),
        aggregatorOptions: aggregatorOptionsOf(body),
        policies: policyOverridesOf(body.moa),
      });
      const { data, clientGone } = run;

      if (!body.stream) {
        const snapshot = await completedRun(dependencies, request, response, run);
        if (snapshot) response.json(chatCompletionOf(jobView(snapshot)));
        return;
      }

      const created = Math.floor(data.createdAt / 1000);
      const sse = startSse(response);
      const writeChunk = (
        delta: { role?: 'assistant'; content?: string },
        finishReason: ChatFinishReason | null = null,
      ) => sse.write(JSON.stringify(chatChunk(data.requestId, preset.name, created, delta, finishReason)));
      writeChunk({ role: 'assistant', content: '' });
      const { snapshot, timedOut, restarted } = await followRun(dependencies, run, (text) =>
        writeChunk({ content: text }),
      );
      if (clientGone.aborted) return;
      if (snapshot?.status === 'completed' && !timedOut && !restarted) {
        const view = jobView(snapshot);
        writeChunk({}, finishReasonOf(view));
        if (body.stream_options?.include_usage) sse.write(JSON.stringify(usageChunk(view, created)));
      } else {
        const error = restarted ? streamRestarted() : runFailure(snapshot, timedOut, dependencies.timeoutMs);
        sse.write(JSON.stringify(error.toBody()));
      }
      sse.write('[DONE]');
      sse.end();
    })
    .all(methodNotAllowed(['POST']));
  return router;
}

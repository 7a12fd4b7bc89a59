import {
  jobView,
  pendingResponseOf,
  responseEchoOf,
  responseMessage,
  responseMessageId,
  responseOf,
  responsesRequestOf,
  responsesRequestSchema,
} from '@moa-queue/contract';
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
import { strictRouter } from '../strict-router.js';
import { parseOrThrow } from '../validation.js';

/**
 * `POST /v1/responses`: the OpenAI Responses API subset for text, on the same
 * path as a chat completion (a preset as `model`, a stream lease while it
 * waits, the aggregator's deltas relayed). `input` and `instructions` become
 * the messages; `max_output_tokens`, `temperature`, `top_p` and
 * `text.format` apply to the aggregator call. A failed run answers 502 like
 * a chat completion; streamed, it ends with `response.failed`.
 */
export function responsesRouter(dependencies: MoaRunDependencies) {
  const router = strictRouter();
  router
    .route('/v1/responses')
    .post(async (request, response) => {
      const body = parseOrThrow(responsesRequestSchema, request.body);
      const preset = presetOf(dependencies.config, body.model);
      const { messages, maxTokens, aggregatorOptions, policies } = responsesRequestOf(body);
      // Only a waiting request answers its failure as a status, which SDKs retry.
      if (!body.stream) await refuseRepeatedFailure(dependencies, request, response);
      const run = await startRun(dependencies, response, {
        preset,
        messages,
        metadata: body.metadata ?? undefined,
        stream: body.stream === true,
        source: 'chat',
        maxTokens,
        aggregatorOptions,
        policies,
      });
      const { data, clientGone } = run;
      const echo = responseEchoOf(body);

      if (!body.stream) {
        const snapshot = await completedRun(dependencies, request, response, run);
        if (snapshot) response.json(responseOf(jobView(snapshot), echo));
        return;
      }

      const sse = startSse(response);
      let sequence = 0;
      const emit = (type: string, fields: Record<string, unknown>) =>
        sse.write(JSON.stringify({ type, ...fields, sequence_number: sequence++ }), type);
      const createdAt = Math.floor(data.createdAt / 1000);
      const pending = pendingResponseOf(data.requestId, preset.name, createdAt, echo, data.metadata);
      const item = { item_id: responseMessageId(data.requestId), output_index: 0 };
      const part = (text: string) => ({ type: 'output_text', text, annotations: [], logprobs: [] });
      emit('response.created', { response: pending });
      emit('response.in_progress', { response: pending });
      emit('response.output_item.added', {
        output_index: 0,
        item: { ...responseMessage(data.requestId, '', 'in_progress'), content: [] },
      });
      emit('response.content_part.added', { ...item, content_index: 0, part: part('') });
      const { snapshot, timedOut, restarted } = await followRun(dependencies, run, (text) =>
        emit('response.output_text.delta', { ...item, content_index: 0, delta: text, logprobs: [] }),
      );
      if (clientGone.aborted) return;
      if (snapshot?.status === 'completed' && !timedOut && !restarted) {
        const final = responseOf(jobView(snapshot), echo);
        const text = final.output[0]?.content[0]?.text ?? '';
        emit('response.output_text.done', { ...item, content_index: 0, text, logprobs: [] });
        emit('response.content_part.done', { ...item, content_index: 0, part: part(text) });
        emit('response.output_item.done', { output_index: 0, item: final.output[0] });
        emit(final.status === 'incomplete' ? 'response.incomplete' : 'response.completed', {
          response: final,
        });
      } else {
        const error = restarted ? streamRestarted() : runFailure(snapshot, timedOut, dependencies.timeoutMs);
        const failed = snapshot
          ? { ...responseOf(jobView(snapshot), echo), status: 'failed' as const, output: [] }
          : { ...pending, status: 'failed' as const };
        emit('response.failed', {
          response: { ...failed, error: { code: error.code ?? 'moa_failed', message: error.message } },
        });
      }
      sse.end();
    })
    .all(methodNotAllowed(['POST']));
  return router;
}

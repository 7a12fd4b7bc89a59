import {
  cancelKey,
  requestJobKey,
  returnedCallRecordSchema,
  storedReferenceLayersSchema,
  type CallJobData,
  type JobDataSchemas,
  type RequestJobData,
} from '@moa-queue/contract';
import {
  contextWindowOf,
  layerCount,
  planCall,
  referenceLayerOf,
  roleOfLayer,
  type CallRecord,
  type MoaConfig,
  type PlannedCall,
} from '@moa-queue/moa';
import type { Redis } from 'ioredis';
import { expectJobData, invalidJobData, parseJobData } from './parse-job-data.js';

/** What {@link createCallPromptReader} needs. */
export interface CallPromptDependencies {
  /** A plain connection with auto-pipelining: the reads of one call go out in one round trip. */
  redis: Redis;
  prefix: string;
  /** The context windows the prompt is fitted into, as the orchestrator fitted it. */
  config: MoaConfig;
  schemas: JobDataSchemas;
  /**
   * Parsed request data kept per process, by request id: every call of a
   * request reads the same data, and parsing it again would be the call's
   * largest CPU cost after the HTTP call itself.
   * @defaultValue 512
   */
  cachedRequests?: number;
}

/**
 * A call's prompt; or the record its request already holds for it (the call
 * was added again after it completed, see `CALL_RETENTION_COMPLETED`); or
 * the news that its request was cancelled before the call started.
 */
export type CallPrompt =
  | { outcome: 'answered'; record: CallRecord }
  | { outcome: 'cancelled' }
  | {
      outcome: 'prompt';
      /** The agent and messages to send, exactly as the orchestrator planned them. */
      planned: PlannedCall;
      /** Whether to stream the answer into the request's events (an aggregator's, when asked). */
      stream: boolean;
      /** The request's parameters for its aggregator call; undefined for a proposer's. */
      callOptions: RequestJobData['aggregatorOptions'];
    };

/**
 * Reads what a call job needs to build its prompt, in one round trip with
 * the cancel check and the look for its own result: its request's data
 * (messages and preset snapshot) and, after the first layer, the request's
 * stored layers, whose answers are the references. The prompt is then built by `planCall`, the function the
 * orchestrator planned the layer with, so a call job carries what identifies
 * its prompt and never a copy of it. Both fields are validated before use,
 * like any job data: anything that reaches Redis can have written them.
 */
export function createCallPromptReader(dependencies: CallPromptDependencies) {
  const { redis, prefix, config, schemas } = dependencies;
  const capacity = dependencies.cachedRequests ?? 512;
  /** Insertion-ordered, so the first key is the least recently used. */
  const requests = new Map<string, { raw: string; data: RequestJobData }>();
  const windowOf = (modelId: string) => contextWindowOf(config, modelId);

  /** The request's data, parsed once per process while its stored JSON stays the same. */
  function requestData(requestId: string, raw: string): RequestJobData {
    const cached = requests.get(requestId);
    if (cached?.raw === raw) {
      requests.delete(requestId);
      requests.set(requestId, cached);
      return cached.data;
    }
    const data = parseJobData(schemas.request, parseJson(raw, 'request'));
    expectJobData(data.requestId === requestId, 'requestId', 'is not the id of the request job read');
    requests.delete(requestId);
    requests.set(requestId, { raw, data });
    if (requests.size > capacity) requests.delete(requests.keys().next().value!);
    return data;
  }

  /**
   * @param call the call job's validated data
   * @param callKey the call job's own key: where BullMQ records its result in its request
   */
  return async function readCallPrompt(call: CallJobData, callKey: string): Promise<CallPrompt> {
    const jobKey = requestJobKey(prefix, call.requestId);
    // The first layer has no references: its calls read no layers.
    const fields = call.layer > 1 ? ['data', 'progress'] : ['data'];
    // Issued together: the connection auto-pipelines them into one round trip.
    const [answered, cancelled, [rawData, rawProgress]] = await Promise.all([
      redis.hget(`${jobKey}:processed`, callKey),
      redis.exists(cancelKey(prefix, call.requestId)),
      redis.hmget(jobKey, ...fields),
    ]);
    if (answered !== null) {
      const record = parseJobData(returnedCallRecordSchema, parseJson(answered, 'processed'));
      expectJobData(
        record.agentIndex === call.agentIndex,
        'agentIndex',
        'is not the agent of the stored result',
      );
      return { outcome: 'answered', record };
    }
    if (cancelled === 1) return { outcome: 'cancelled' };
    expectJobData(typeof rawData === 'string', 'requestId', 'names no request: its job is gone');
    const request = requestData(call.requestId, rawData);
    const { preset } = request;
    expectJobData(preset.name === call.presetName, 'presetName', "is not the preset of the call's request");
    expectJobData(
      call.layer <= layerCount(preset),
      'layer',
      `the request's preset has no layer ${call.layer}`,
    );
    expectJobData(
      roleOfLayer(preset, call.layer) === call.role,
      'role',
      `is not the role of layer ${call.layer}`,
    );
    let reference;
    if (call.layer > 1) {
      expectJobData(typeof rawProgress === 'string', 'layer', 'the request has recorded no layer yet');
      const { layers } = parseJobData(storedReferenceLayersSchema, parseJson(rawProgress, 'progress'));
      reference = referenceLayerOf(layers, call.layer);
      expectJobData(reference !== undefined, 'layer', 'the request has recorded no layer before this one');
    }
    const planned = planCall(preset, call.layer, call.agentIndex, request.messages, reference, {
      ...(call.referenceShare === undefined ? {} : { referenceShare: call.referenceShare }),
      contextWindowOf: windowOf,
    });
    expectJobData(planned !== undefined, 'agentIndex', `is not an agent of layer ${call.layer}`);
    expectJobData(
      planned.agent.model === call.agent.model,
      'agent.model',
      "is not this agent's model in the request's preset",
    );
    const aggregator = call.role === 'aggregator';
    return {
      outcome: 'prompt',
      planned,
      stream: aggregator && request.stream === true,
      // The request's sampling and response_format shape the answer it gets: the aggregator's only.
      callOptions: aggregator ? request.aggregatorOptions : undefined,
    };
  };
}

function parseJson(raw: string, field: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw invalidJobData(field, 'is not JSON');
  }
}

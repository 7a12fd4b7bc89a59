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
import type { z } from 'zod';
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
   * Requests whose parsed data and stored layers are kept per process, by
   * request id: every call of a request reads the same data, the calls of a
   * layer the same layers, and parsing them again (and building the same
   * reference block again) was most of a call's CPU besides the HTTP call.
   * @defaultValue 256
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
  const capacity = dependencies.cachedRequests ?? 256;
  /** Insertion-ordered, so the first key is the least recently used. */
  const requests = new Map<string, CachedRequest>();
  const windowOf = (modelId: string) => contextWindowOf(config, modelId);

  /** The request's entry, its data parsed once per process while its stored JSON stays the same. */
  function cachedRequest(requestId: string, raw: string): CachedRequest {
    const known = requests.get(requestId);
    requests.delete(requestId);
    if (known?.raw === raw) {
      requests.set(requestId, known);
      return known;
    }
    const data = parseJobData(schemas.request, parseJson(raw, 'request'));
    expectJobData(data.requestId === requestId, 'requestId', 'is not the id of the request job read');
    const entry: CachedRequest = { raw, data };
    requests.set(requestId, entry);
    if (requests.size > capacity) requests.delete(requests.keys().next().value!);
    return entry;
  }

  /** The request's stored layers, parsed once per process while their stored JSON stays the same. */
  function storedLayers(entry: CachedRequest, raw: string): StoredLayers {
    if (entry.progress?.raw !== raw) {
      const { layers } = parseJobData(storedReferenceLayersSchema, parseJson(raw, 'progress'));
      entry.progress = { raw, layers };
    }
    return entry.progress.layers;
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
    const entry = cachedRequest(call.requestId, rawData);
    const request = entry.data;
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
      // The same parsed layer for every call of a layer: its reference block is built once (moa-plan.ts).
      reference = referenceLayerOf(storedLayers(entry, rawProgress), call.layer);
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

type StoredLayers = z.output<typeof storedReferenceLayersSchema>['layers'];

/** What a process keeps of a request: its data, and the stored layers it last read. */
interface CachedRequest {
  raw: string;
  data: RequestJobData;
  progress?: { raw: string; layers: StoredLayers };
}

function parseJson(raw: string, field: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    throw invalidJobData(field, 'is not JSON');
  }
}

import {
  callJobId,
  JOB_DATA_LIMITS,
  jobView,
  requestJobKey,
  type JobView,
  type MoaQueues,
  type RequestSnapshot,
} from '@moa-queue/contract';
import {
  agentsOfLayer,
  layerCount,
  parseModelId,
  roleOfLayer,
  type AgentConfig,
  type CallRecord,
  type ErrorRecord,
  type LayerRecord,
} from '@moa-queue/moa';
import { Job } from 'bullmq';
import type { Redis } from 'ioredis';

/** One call on the timeline. Times in epoch milliseconds; null where not known yet. */
export interface TimelineCall {
  agent_index: number;
  model: string;
  /** `running`: a worker has it; `pending`: waiting for a worker. */
  status: 'completed' | 'failed' | 'running' | 'pending';
  started_at: number | null;
  finished_at: number | null;
  latency_ms: number | null;
  attempts: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number | null;
  error: ErrorRecord | null;
}

/** One layer on the timeline: a finished layer, or the one whose calls are in flight. */
export interface TimelineLayer {
  layer: number;
  role: 'proposer' | 'aggregator';
  status: 'finished' | 'running';
  started_at: number | null;
  finished_at: number | null;
  calls: TimelineCall[];
}

/**
 * The console's view of a job: the job object of DESIGN §4 unchanged, plus
 * the millisecond timing the public object leaves out, for drawing.
 */
export type ConsoleJob = JobView & {
  created_at_ms: number;
  finished_at_ms: number | null;
  /** The server's clock when this was read: where the bars of unfinished calls end. */
  now_ms: number;
  timeline: TimelineLayer[];
};

function fromRecord(call: CallRecord): TimelineCall {
  return {
    agent_index: call.agentIndex,
    model: call.model,
    status: call.status,
    started_at: call.startedAt,
    finished_at: call.finishedAt,
    latency_ms: call.latencyMs,
    attempts: call.attempts,
    prompt_tokens: call.usage.promptTokens,
    completion_tokens: call.usage.completionTokens,
    cost_usd: call.costUsd,
    error: call.error,
  };
}

function finishedLayer(layer: LayerRecord): TimelineLayer {
  return {
    layer: layer.layer,
    role: layer.role,
    status: 'finished',
    started_at: layer.startedAt,
    finished_at: layer.finishedAt,
    calls: [...layer.calls].sort((left, right) => left.agentIndex - right.agentIndex).map(fromRecord),
  };
}

function isCallRecord(value: unknown): value is CallRecord {
  const record = value as Partial<CallRecord> | null | undefined;
  return (
    typeof record === 'object' &&
    record !== null &&
    (record.status === 'completed' || record.status === 'failed') &&
    typeof record.startedAt === 'number' &&
    typeof record.finishedAt === 'number' &&
    typeof record.usage === 'object'
  );
}

/** What locates the calls of the layer in flight; `completed` is its request's `:processed` hash. */
interface LayerInFlight {
  queues: MoaQueues;
  requestId: string;
  layer: number;
  completed: Record<string, string>;
}

/**
 * One round of a call of the layer in flight: its record once it finished
 * (a completed call's, which BullMQ copied into its request's job before
 * removing the call's own; a failed call's, left as the progress of its
 * kept job), running once a worker picked it up, pending while it waits;
 * undefined when that round's job does not exist.
 */
async function callOfRound(
  { queues, requestId, layer, completed }: LayerInFlight,
  agentIndex: number,
  agent: AgentConfig,
  round: number,
): Promise<TimelineCall | undefined> {
  let child: Job | undefined;
  try {
    const queue = queues.llm(parseModelId(agent.model).provider);
    const jobId = callJobId(requestId, layer, agentIndex, round);
    const result = completed[queue.toKey(jobId)];
    const record: unknown = result === undefined ? undefined : JSON.parse(result);
    if (isCallRecord(record)) return { ...fromRecord(record), agent_index: agentIndex };
    child = await Job.fromId(queue, jobId);
  } catch {
    child = undefined; // a provider no longer configured, or a result not JSON: nothing to read
  }
  if (!child) return undefined;
  if (child.finishedOn) {
    const record: unknown = isCallRecord(child.returnvalue) ? child.returnvalue : child.progress;
    if (isCallRecord(record)) return { ...fromRecord(record), agent_index: agentIndex };
  }
  const running = Boolean(child.processedOn && !child.finishedOn);
  return { ...pendingCall(agentIndex, agent), ...(running ? runningSince(child) : {}) };
}

function pendingCall(agentIndex: number, agent: AgentConfig): TimelineCall {
  return {
    agent_index: agentIndex,
    model: agent.model,
    status: 'pending',
    started_at: null,
    finished_at: null,
    latency_ms: null,
    attempts: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    cost_usd: null,
    error: null,
  };
}

function runningSince(child: Job): Pick<TimelineCall, 'status' | 'started_at' | 'attempts'> {
  return { status: 'running', started_at: child.processedOn!, attempts: child.attemptsMade + 1 };
}

/**
 * A call of the layer in flight, in its latest round: an aggregator run again
 * with halved references (round 1, `-R1`) replaces its refused first round,
 * which must not show as the layer's failure while the new round runs.
 */
async function liveCall(
  inFlight: LayerInFlight,
  agentIndex: number,
  agent: AgentConfig,
  rounds: number,
): Promise<TimelineCall> {
  for (let round = rounds; round >= 0; round -= 1) {
    const call = await callOfRound(inFlight, agentIndex, agent, round);
    if (call) return call;
  }
  return pendingCall(agentIndex, agent);
}

/** The layer whose calls are in flight, from the orchestrator's progress, or undefined. */
async function currentLayer(
  queues: MoaQueues,
  redis: Redis,
  snapshot: RequestSnapshot,
  finished: LayerRecord[],
): Promise<TimelineLayer | undefined> {
  const layer = snapshot.progress?.currentLayer;
  const { preset, requestId } = snapshot.data;
  if (typeof layer !== 'number' || layer < 1 || layer > layerCount(preset)) return undefined;
  // Only the aggregator is ever run again (JOB_DATA_LIMITS.maxRounds, with halved references
  // after its first round was refused), so only its layer can be both recorded and in flight:
  // then the run in flight is what to show.
  const aggregator = roleOfLayer(preset, layer) === 'aggregator';
  if (!aggregator && finished.some((record) => record.layer === layer)) return undefined;
  const completed = await redis.hgetall(`${requestJobKey(queues.prefix, requestId)}:processed`);
  const rounds = aggregator ? JOB_DATA_LIMITS.maxRounds : 0;
  const calls = await Promise.all(
    agentsOfLayer(preset, layer).map((agent, index) =>
      liveCall({ queues, requestId, layer, completed }, index, agent, rounds),
    ),
  );
  return {
    layer,
    role: roleOfLayer(preset, layer),
    status: 'running',
    started_at: snapshot.progress?.layerStartedAt[String(layer)] ?? null,
    finished_at: null,
    calls,
  };
}

/** The job object plus its timeline: every finished layer, then the layer in flight with pending bars. */
export async function consoleJob(
  queues: MoaQueues,
  redis: Redis,
  snapshot: RequestSnapshot,
  now = Date.now(),
): Promise<ConsoleJob> {
  const view = jobView(snapshot);
  const finished = snapshot.result?.layers ?? snapshot.progress?.layers ?? [];
  const inFlight = await currentLayer(queues, redis, snapshot, finished);
  const timeline = finished.filter((record) => record.layer !== inFlight?.layer).map(finishedLayer);
  if (inFlight) timeline.push(inFlight);
  const done = view.status === 'completed' || view.status === 'failed' || view.status === 'cancelled';
  return {
    ...view,
    created_at_ms: snapshot.data.createdAt,
    finished_at_ms: done ? (snapshot.finishedOn ?? null) : null,
    now_ms: now,
    timeline,
  };
}

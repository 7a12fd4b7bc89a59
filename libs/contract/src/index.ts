export { REQUESTS_QUEUE, DEADLINES_QUEUE, WEBHOOKS_QUEUE, LLM_QUEUE_PREFIX, DEFAULT_QUEUE_PREFIX, llmQueueName } from './queue-names.js';
export { newRequestId, callJobId, parseCallJobId, jobIdFromKey, REQUEST_ID_PATTERN } from './job-ids.js';
export type {
  RequestJobData,
  CallJobData,
  CallJobResult,
  RequestProgress,
  RequestStatus,
  DeadlineJobData,
  WebhookJobData,
} from './payloads.js';
export { REQUEST_RETENTION, CALL_RETENTION_COMPLETED, CALL_RETENTION_FAILED } from './retention.js';
export { cancelKey, deadlineKey, cancelCallsChannel, CANCEL_MARKER_TTL_SECONDS } from './cancel-marker.js';
export { createMoaQueues, type MoaQueues, type MoaQueuesOptions } from './moa-queues.js';
export {
  jobView,
  layerView,
  type JobView,
  type LayerView,
  type CallView,
  type RequestSnapshot,
  type WebhookDeliveryView,
} from './job-view.js';
export { readRequest, loadRequest, snapshotOf, deliveriesKey, type LoadedRequest } from './read-request.js';
export {
  eventsKey,
  publishEvent,
  readEvents,
  EVENTS_TTL_SECONDS,
  EVENTS_MAX_LENGTH,
  type RequestEvent,
  type ReadEvent,
} from './request-events.js';

export {
  REQUESTS_QUEUE,
  DEADLINES_QUEUE,
  WEBHOOKS_QUEUE,
  LLM_QUEUE_PREFIX,
  DEFAULT_QUEUE_PREFIX,
  llmQueueName,
  requestJobKey,
} from './queue-names.js';
export { newRequestId, callJobId, parseCallJobId, jobIdFromKey, REQUEST_ID_PATTERN } from './job-ids.js';
export type {
  RequestJobData,
  CallJobData,
  CallJobResult,
  RequestProgress,
  RequestStatus,
  RequestResult,
  DeadlineJobData,
  WebhookJobData,
} from './payloads.js';
export {
  REQUEST_RETENTION,
  CALL_RETENTION_COMPLETED,
  CALL_RETENTION_FAILED,
  DEFAULT_BATCH_ITEM_GRACE_MS,
  QUEUE_EVENTS_MAX_LENGTH,
} from './retention.js';
export {
  cancelKey,
  deadlineKey,
  cancelCallsChannel,
  markCancelled,
  publishCallCancels,
  parseCallCancels,
  requestCallIds,
  CANCEL_MARKER_TTL_SECONDS,
  type CallCancels,
} from './cancel-marker.js';
export { createMoaQueues, type MoaQueues, type MoaQueuesOptions } from './moa-queues.js';
export {
  jobView,
  layerView,
  type JobView,
  type StoppedView,
  type LayerView,
  type CallView,
  type ReferenceCutView,
  type RequestSnapshot,
  type WebhookDeliveryView,
} from './job-view.js';
export {
  readRequest,
  loadRequest,
  snapshotOf,
  deliveriesKey,
  isFinished,
  type LoadedRequest,
} from './read-request.js';
export {
  eventsKey,
  publishEvent,
  EVENTS_TTL_SECONDS,
  DONE_EVENTS_TTL_SECONDS,
  EVENTS_MAX_LENGTH,
  type RequestEvent,
} from './request-events.js';
export {
  BATCHES_QUEUE,
  BATCH_LIMITS,
  FILE_CHUNK_BYTES,
  BATCH_ITEM_PRIORITY,
  batchItemPriority,
  BATCH_VALIDATION_CHUNK_LINES,
  BATCH_VALIDATION_CHUNK_BYTES,
  BATCH_VALIDATIONS_PER_PROCESS,
  BATCH_RETENTION_SECONDS,
  BATCH_COMPLETION_WINDOW_MS,
  BATCH_FORCE_FINALIZE_MS,
  FILE_ID_PATTERN,
  BATCH_ID_PATTERN,
  newFileId,
  newBatchId,
  newBatchRequestId,
  batchItemRequestId,
  batchIdOfItem,
  batchItemsToForgetKey,
  fileKey,
  fileChunksKey,
  batchKey,
  batchDoneKey,
  batchSeenKey,
  batchOutputKey,
  batchErrorKey,
  batchIndexKey,
  fileIndexKey,
  tenantFileBytesKey,
  type BatchJobData,
  type BatchJobName,
} from './batch-keys.js';
export {
  fileObject,
  readStoredFile,
  saveStoredFile,
  deleteStoredFile,
  listToFile,
  type FileObject,
  type StoredFile,
} from './batch-files.js';
export {
  isInlineEntry,
  type FileStore,
  type FileWriter,
  type FileReadOptions,
  type FileSweepOptions,
  type FileSweepReport,
  type FileFromList,
} from './file-store.js';
export { FileStoreError, type FileStoreErrorCode } from './file-store-error.js';
export { RedisFileStore, type RedisFileStoreOptions } from './redis-file-store.js';
export { DirectoryFileStore, type DirectoryFileStoreOptions } from './directory-file-store.js';
export { createFileStore, type FileStoreOptions } from './create-file-store.js';
export {
  batchObject,
  requestCountsOf,
  readBatchHash,
  countActiveBatchItems,
  TERMINAL_BATCH_STATUSES,
  type BatchObject,
  type BatchRequestCounts,
  type BatchStatus,
  type BatchErrorEntry,
} from './batch-record.js';
export {
  recordBatchItem,
  markBatchValidated,
  claimBatchCustomIds,
  commitValidationChunk,
  validationCheckpointOf,
  requestBatchCancel,
  beginBatchExpiry,
  completeBatch,
  settleBatchCounts,
  failBatch,
  queueBatchJob,
  type BatchItemOutcome,
  type ValidationCheckpoint,
} from './batch-accounting.js';
export { batchOutputLine, batchErrorLine } from './batch-lines.js';
export {
  chatCompletionSchema,
  messageSchema,
  messagesSchema,
  metadataSchema,
  type ChatCompletionBody,
} from './chat-request-schema.js';
export {
  UNSUPPORTED_PARAMETER,
  UNSUPPORTED_PARAMETER_NAMES,
  REQUEST_OPTION_LIMITS,
  requestOptionsShape,
  responseFormatSchema,
  tokenLimitSchema,
  checkUnsupported,
  refusingUnsupported,
  requestIssueCode,
  aggregatorOptionsOf,
  maxTokensOf,
  moaPoliciesSchema,
  policyOverridesOf,
  withPolicies,
  type PolicyOverrides,
  type RequestOptionsBody,
} from './request-options.js';
export { newRequestData, type NewRequestOptions } from './new-request.js';
export {
  chatCompletionOf,
  chatChunk,
  completionId,
  finishReasonOf,
  moaExtension,
  usageChunk,
} from './chat-completion.js';
export { failureMayRecover } from './failure-retry.js';
export { createLogger, REDACTED_LOG_PATHS } from './create-logger.js';
export { SHARED_ENVIRONMENT, parseEnvironment } from './environment.js';
export { DEFAULT_TENANT, ownerTenant, webhookSecretFor } from './tenancy.js';
export { tenantRequestsKey, tenantActiveRequestsKey, indexTenantRequests } from './tenant-request-index.js';
export {
  JOB_DATA_LIMITS,
  agentConfigSchema,
  aggregatorOptionsSchema,
  presetConfigSchema,
  requestJobDataSchema,
  callJobDataSchema,
  storedReferenceLayersSchema,
  returnedCallRecordSchema,
  deadlineJobDataSchema,
  webhookJobDataSchema,
  batchJobDataSchema,
  jobDataSchemasFor,
  type JobDataSchemas,
  type JobDataSchemasMatchTypes,
} from './job-data-schemas.js';
export {
  blockedAddressReason,
  isBlockedAddress,
  compileAllowList,
  literalWebhookAddressBlocked,
  type AllowList,
} from './webhook-address-policy.js';
export { isInfrastructureError, REDIS_REFUSAL_CODES } from './infrastructure-error.js';
export { withTimeout } from './with-timeout.js';
export {
  createConnectionStateLogger,
  type ConnectionStateLogger,
  type ConnectionStateLoggerOptions,
} from './connection-state-log.js';
export { createRedisUpGauge, type RedisUpGaugeOptions } from './redis-up-metric.js';
export { batchDoneRequestsKey } from './batch-accounting.js';
export {
  responsesRequestSchema,
  responsesRequestOf,
  responseId,
  responseMessageId,
  responseMessage,
  responseEchoOf,
  responseUsageOf,
  pendingResponseOf,
  responseOf,
  type ResponsesRequestBody,
  type ResponseEcho,
} from './responses.js';
export { formatParam, describeRequestIssue, type RequestIssue } from './request-issue.js';
export { coalesceWrites } from './coalesced-writes.js';

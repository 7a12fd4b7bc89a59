export type {
  ChatMessage,
  AgentConfig,
  PresetConfig,
  ProviderConfig,
  ModelPricing,
  ModelConfig,
  ReferenceFormat,
  WebhookSettings,
  TenantSettings,
  Quotas,
  MoaConfig,
  Usage,
  ErrorRecord,
  CallRecord,
  ContextFitRecord,
  ReferenceCutRecord,
  LayerRecord,
  EarlyStopPolicy,
  StopRecord,
} from './types.js';

export { ConfigError, type ConfigIssue, type ConfigErrorOptions } from './config-error.js';
export { parseModelId, type ParsedModelId } from './model-id.js';
export {
  BUILT_IN_PROVIDERS,
  BUILT_IN_MODELS,
  BUILT_IN_PRESETS,
  BUILT_IN_SAMPLING,
  CONFIG_DEFAULTS,
  PRESET_CREATED_DEFAULT,
  builtInConfig,
} from './built-in-config.js';
export {
  moaConfigFileSchema,
  CONFIG_NAME_PATTERN,
  TENANT_NAME_PATTERN,
  WEBHOOK_SECRET_PATTERN,
  type MoaConfigFile,
} from './config-schema.js';
export {
  parseMoaConfig,
  loadMoaConfig,
  resolvePreset,
  priceOf,
  contextWindowOf,
  quotasOf,
} from './load-config.js';
export {
  DEFAULT_REFERENCE_PROMPT,
  PAPER_REFERENCE_PROMPT,
  PAPER_RESPONSES_HEADING,
  TRUNCATED_REFERENCE_NOTE,
  buildAgentMessages,
  type BuildAgentMessagesOptions,
} from './references.js';
export { pythonStrip } from './python-strip.js';
export {
  referenceTagName,
  openingReferenceTag,
  closingReferenceTag,
  neutraliseReferenceText,
  ESCAPED_REFERENCE_BRACKET,
} from './reference-boundary.js';
export { computeCostUsd, sumCosts } from './cost.js';
export {
  checkPresetModels,
  missingPresetModels,
  listedModelIds,
  isServed,
  type CheckPresetModelsOptions,
  type PresetModelCheck,
  type ProviderCheck,
  type MissingPresetModel,
} from './preset-models-check.js';
export {
  chatFinishReason,
  finishReasonLabel,
  FINISH_REASON_LABELS,
  type AggregatorOptions,
  type ChatFinishReason,
  type ResponseFormat,
} from './aggregator-options.js';

export type { ChatModel, ChatRequest, ChatResult } from './chat-model.js';
export {
  createOpenAICompatibleProvider,
  type OpenAICompatibleProviderOptions,
} from './openai-compatible-provider.js';
export {
  createModelRegistry,
  type ModelRegistry,
  type ModelRegistryOptions,
  type ResolvedModel,
} from './model-registry.js';

export { ProviderError, type ProviderErrorType, type ProviderErrorOptions } from './errors/provider-error.js';
export { ProviderRateLimitError } from './errors/rate-limit-error.js';
export { ProviderTimeoutError } from './errors/timeout-error.js';
export { ProviderServerError } from './errors/server-error.js';
export { ProviderConflictError } from './errors/conflict-error.js';
export { ProviderConnectionError } from './errors/connection-error.js';
export { InvalidRequestError } from './errors/invalid-request-error.js';
export { AuthenticationError } from './errors/authentication-error.js';
export { PermissionDeniedError } from './errors/permission-error.js';
export { ModelNotFoundError } from './errors/not-found-error.js';
export { ContentFilterError } from './errors/content-filter-error.js';
export { LayerDeadlineError } from './errors/layer-deadline-error.js';
export { CallCancelledError } from './errors/call-cancelled-error.js';
export { errorFromStatus } from './errors/error-from-status.js';
export {
  CONTEXT_LENGTH_EXCEEDED,
  isContextLengthExceeded,
  failedForContextLength,
} from './errors/context-length-exceeded.js';
export { asProviderError } from './errors/as-provider-error.js';
export { retryAfterMsFromHeaders, type HeaderLookup } from './retry-after.js';
export { backoffDelayMs, type BackoffOptions } from './backoff.js';
export { abortableSleep } from './abortable-sleep.js';

export { attemptCall, type AttemptResult, type AttemptOptions } from './call-attempt.js';
export {
  completedCallRecord,
  failedCallRecord,
  unsentCallRecord,
  withContextFit,
  type FailedCall,
} from './call-records.js';
export {
  TOKENIZER_ENCODING,
  TOKENS_PER_MESSAGE,
  TOKENS_PER_PROMPT,
  CONTEXT_SAFETY_MARGIN,
  countTextTokens,
  countPromptTokens,
  usableContextTokens,
  type TokenCountMemo,
} from './count-tokens.js';
export {
  fitToContext,
  cutReferenceNote,
  waterFillCap,
  MAX_TOKENS_FLOOR,
  type FitToContextOptions,
  type ContextFitOutcome,
  type FittedPrompt,
  type ExceededPrompt,
  type ReferenceCut,
} from './fit-to-context.js';
export {
  HALVED_REFERENCE_SHARE,
  needsHalvedReferences,
  recordAfterHalvedReferences,
} from './halved-references.js';
export { callWithRetries, type CallWithRetriesOptions } from './call-with-retries.js';
export {
  layerCount,
  roleOfLayer,
  agentsOfLayer,
  referencesFrom,
  truncatedReferencesFrom,
  planLayer,
  planCall,
  referenceLayerOf,
  type PlannedCall,
  type PlanLayerOptions,
  type ReferenceLayer,
} from './moa-plan.js';
export { callKey, type CallIdentity } from './call-key.js';
export {
  closedLayerRecord,
  decideNext,
  isTerminal,
  reachesAgreement,
  stepCallKey,
  type MoaState,
  type MoaDecision,
  type LayerStep,
  type TerminalDecision,
} from './moa-decider.js';
export { agreementOf, jaccard, tokenSet } from './agreement.js';
export {
  estimatePromptTokens,
  worstCaseCallCostUsd,
  worstCaseLayerCostUsd,
  spentUsd,
  type PriceLookup,
} from './cost-projection.js';
export { retryDecision, retryDelayMs, type RetryDecision, type RetryRuleInput } from './retry-rule.js';
export {
  abortedCallError,
  cancelCauseOf,
  cancelledCallError,
  cancelledRequestError,
  isCancelCause,
  CANCEL_CAUSES,
  type CancelCause,
} from './cancellation.js';
export {
  totalUsage,
  totalCost,
  callsCost,
  layerShortfall,
  finishedLayer,
  answerOf,
  type MoaResult,
} from './moa-result.js';
export type { MoaEvent } from './moa-events.js';
export { runMoa, type RunMoaOptions } from './run-moa.js';

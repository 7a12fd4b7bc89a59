export { createFakeProvider, type FakeProvider, type FakeProviderOptions } from './fake-provider.js';
export {
  InvalidScriptError,
  parseModelBehaviour,
  parseScriptedAction,
  type ModelBehaviour,
  type ScriptedAction,
} from './scripted-action.js';
export type { RecordedMessage, RecordedRequest, RecordedSampling } from './recorded-request.js';
export { jsonAnswerContent, minimalInstance, type FakeResponseFormat } from './structured-answer.js';
export {
  countPromptTokens,
  countWords,
  fixedAnswer,
  generateAnswer,
  type Answer,
  type GenerateAnswerOptions,
} from './deterministic-answer.js';
export { errorTypeForStatus, openAiErrorBody, type OpenAiErrorBody } from './openai-error.js';
export { countWindowTokens, contextLengthErrorBody } from './context-window.js';

export { createFakeProvider, type FakeProvider, type FakeProviderOptions } from './fake-provider.js';
export {
  InvalidScriptError,
  parseModelBehaviour,
  parseScriptedAction,
  type ModelBehaviour,
  type ScriptedAction,
} from './scripted-action.js';
export type { RecordedMessage, RecordedRequest } from './recorded-request.js';
export {
  countPromptTokens,
  countWords,
  generateAnswer,
  type Answer,
  type GenerateAnswerOptions,
} from './deterministic-answer.js';
export { errorTypeForStatus, openAiErrorBody, type OpenAiErrorBody } from './openai-error.js';

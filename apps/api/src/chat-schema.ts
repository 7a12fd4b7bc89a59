// The chat request schema lives in the shared contract: the worker checks batch lines with it too.
export { chatCompletionSchema, type ChatCompletionBody } from '@moa-queue/contract';

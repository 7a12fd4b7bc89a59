// Job data is built by a shared function: the worker builds batch items' data with it too.
export { newRequestData, type NewRequestOptions } from '@moa-queue/contract';

export { createApp, type AppDependencies } from './app.js';
export { loadApiConfig, checkListenPolicy, isLoopbackHost, type ApiConfig } from './config.js';
export { ApiError, type ErrorBody } from './api-error.js';
export {
  jobView,
  layerView,
  type JobView,
  type LayerView,
  type CallView,
  type RequestSnapshot,
} from '@moa-queue/contract';
export { createLogger } from './logger.js';

export {
  createInMemoryModel,
  type InMemoryModel,
  type InMemoryModelOptions,
  type InMemoryResponse,
} from './in-memory-model.js';

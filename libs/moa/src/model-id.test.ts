import { describe, it, expect } from 'vitest';
import { parseModelId } from './model-id.js';

describe('parseModelId', () => {
  it('takes the first segment as the provider and passes the rest unchanged', () => {
    expect(parseModelId('together/Qwen/Qwen2.5-72B-Instruct-Turbo')).toEqual({
      provider: 'together',
      model: 'Qwen/Qwen2.5-72B-Instruct-Turbo',
    });
  });

  it('handles a model id without slashes of its own', () => {
    expect(parseModelId('openai/gpt-4o')).toEqual({ provider: 'openai', model: 'gpt-4o' });
  });

  it('keeps a trailing slash and other characters of the model id as they are', () => {
    expect(parseModelId('ollama/llama3.1:8b/')).toEqual({ provider: 'ollama', model: 'llama3.1:8b/' });
  });

  it.each(['gpt-4o', '/gpt-4o', 'openai/', '/', '', ' /x'])('rejects %j, naming the id', (id) => {
    expect(() => parseModelId(id)).toThrow(`Invalid model id ${JSON.stringify(id)}`);
  });
});

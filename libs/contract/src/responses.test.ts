import { describe, expect, it } from 'vitest';
import { responsesRequestOf, responsesRequestSchema } from './responses.js';

const parse = (body: unknown) => responsesRequestSchema.safeParse(body);

describe('responsesRequestSchema and responsesRequestOf', () => {
  it('puts instructions first, joins input_text parts, and maps the options to the aggregator', () => {
    const body = responsesRequestSchema.parse({
      model: 'three',
      instructions: 'Be brief.',
      input: [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'a' },
            { type: 'input_text', text: 'b' },
          ],
        },
        {
          type: 'message',
          role: 'assistant',
          content: [{ type: 'output_text', text: 'c', annotations: [] }],
        },
        { role: 'user', content: 'd' },
      ],
      max_output_tokens: 32,
      temperature: 0.5,
      top_p: 0.9,
      text: { format: { type: 'json_schema', name: 'x', schema: { type: 'object' }, strict: true } },
      user: 'ignored',
      store: false,
    });
    expect(responsesRequestOf(body)).toEqual({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'ab' },
        { role: 'assistant', content: 'c' },
        { role: 'user', content: 'd' },
      ],
      maxTokens: 32,
      aggregatorOptions: {
        temperature: 0.5,
        topP: 0.9,
        responseFormat: {
          type: 'json_schema',
          json_schema: { name: 'x', schema: { type: 'object' }, strict: true },
        },
      },
    });
  });

  it('takes a string input as one user message; a text format sends no response_format', () => {
    const body = responsesRequestSchema.parse({
      model: 'three',
      input: 'hi',
      text: { format: { type: 'text' } },
    });
    expect(responsesRequestOf(body)).toEqual({
      messages: [{ role: 'user', content: 'hi' }],
      maxTokens: undefined,
      aggregatorOptions: undefined,
    });
  });

  it.each([
    ['previous_response_id', { previous_response_id: 'resp_1' }],
    ['store', { store: true }],
    ['tools', { tools: [{ type: 'web_search' }] }],
    ['tool_choice', { tool_choice: 'auto' }],
    ['background', { background: true }],
    ['reasoning', { reasoning: { effort: 'low' } }],
    ['include', { include: ['reasoning.encrypted_content'] }],
    ['conversation', { conversation: { id: 'conv_1' } }],
  ])('refuses %s as unsupported_parameter', (name, extra) => {
    const result = parse({ model: 'three', input: 'hi', ...extra });
    expect(result.success).toBe(false);
    const issue = result.error?.issues[0] as { path: unknown[]; params?: { code?: string } } | undefined;
    expect(issue?.path).toEqual([name]);
    expect(issue?.params?.code).toBe('unsupported_parameter');
  });

  it('accepts tool_choice none and empty tool lists, which ask for nothing', () => {
    expect(parse({ model: 'three', input: 'hi', tool_choice: 'none', tools: [], include: [] }).success).toBe(
      true,
    );
  });

  it.each([
    ['no user text', { input: [{ role: 'system', content: 'x' }] }],
    ['an empty string', { input: '' }],
    ['an empty parts list', { input: [{ role: 'user', content: [] }] }],
    ['a message over the limit', { input: [{ role: 'user', content: 'x'.repeat(1_000_001) }] }],
    ['temperature above 2', { input: 'hi', temperature: 2.5 }],
    ['a nameless json_schema', { input: 'hi', text: { format: { type: 'json_schema', schema: {} } } }],
    ['an unknown format', { input: 'hi', text: { format: { type: 'xml' } } }],
  ])('refuses %s', (_name, extra) => {
    expect(parse({ model: 'three', ...extra }).success).toBe(false);
  });
});

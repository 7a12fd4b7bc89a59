import { describe, expect, it } from 'vitest';
import { resolveResponsePlan } from './response-plan.js';
import { ScriptBook } from './script-book.js';
import { parseModelBehaviour, parseScriptedAction } from './scripted-action.js';

describe('resolveResponsePlan', () => {
  it('lets a scripted action override the behaviour for one request', () => {
    expect(resolveResponsePlan({ latencyMs: 5 }, { failStatus: 500, content: 'x' }, 0)).toEqual({
      kind: 'answer',
      latencyMs: 5,
      content: 'x',
    });
    expect(resolveResponsePlan(undefined, { failStatus: 500, latencyMs: 7 }, 0)).toMatchObject({
      kind: 'fail',
      status: 500,
      latencyMs: 7,
    });
    expect(resolveResponsePlan({ hang: true }, { failStatus: 500 }, 0)).toEqual({ kind: 'hang' });
    expect(resolveResponsePlan(undefined, undefined, 9)).toEqual({
      kind: 'answer',
      latencyMs: 9,
      content: undefined,
    });
  });

  it('holds an answer for a hold action or behaviour, but not for another action', () => {
    expect(resolveResponsePlan({ hold: true, content: 'c' }, undefined, 3)).toEqual({
      kind: 'answer',
      latencyMs: 3,
      content: 'c',
      hold: true,
    });
    expect(resolveResponsePlan(undefined, { hold: true, latencyMs: 4 }, 0)).toMatchObject({
      kind: 'answer',
      latencyMs: 4,
      hold: true,
    });
    expect(resolveResponsePlan({ latencyMs: 1 }, { hold: true }, 0)).not.toHaveProperty('hold');
    expect(resolveResponsePlan(undefined, { hold: true, failStatus: 503 }, 0)).toMatchObject({
      kind: 'fail',
    });
    expect(resolveResponsePlan(undefined, undefined, 0)).not.toHaveProperty('hold');
  });

  it('turns retry-after fields into headers', () => {
    expect(
      resolveResponsePlan({ status: 429, retryAfterSeconds: 2, retryAfterMs: 1500 }, undefined, 0),
    ).toMatchObject({
      headers: { 'retry-after': '2', 'retry-after-ms': '1500' },
    });
  });
});

describe('ScriptBook', () => {
  it("uses the '*' queue only when the model has none of its own", () => {
    const book = new ScriptBook();
    book.script('*', [{ status: 500 }]);
    book.script('a', [{ content: 'own' }]);
    expect(book.take('a').action).toEqual({ content: 'own' });
    expect(book.take('a').action).toEqual({ status: 500 });
    expect(book.take('a').action).toBeUndefined();
  });
});

describe('hold in scripts and behaviours', () => {
  it('parses a hold action with its answer fields, and rejects a malformed one', () => {
    expect(parseScriptedAction({ hold: true })).toEqual({ hold: true });
    expect(parseScriptedAction({ hold: true, latencyMs: 5, content: 'x' })).toEqual({
      hold: true,
      latencyMs: 5,
      content: 'x',
    });
    expect(() => parseScriptedAction({ hold: false })).toThrow('hold must be true');
    expect(parseModelBehaviour({ hold: true })).toEqual({ hold: true });
    expect(() => parseModelBehaviour({ hold: 'yes' })).toThrow('hold must be a boolean');
  });
});

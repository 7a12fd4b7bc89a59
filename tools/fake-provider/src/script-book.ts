import type { ModelBehaviour, ScriptedAction } from './scripted-action.js';

/** The model id whose scripts and behaviour apply to every model without its own. */
export const ANY_MODEL = '*';

/** What a request to a model gets from the book: at most one action, plus the persistent behaviour. */
export interface ScriptLookup {
  action?: ScriptedAction;
  behaviour?: ModelBehaviour;
}

/**
 * Per-model queues of one-shot actions and persistent behaviours. Kept apart
 * from the HTTP server so the precedence rules (own model before `'*'`) live
 * in one place.
 */
export class ScriptBook {
  private readonly queues = new Map<string, ScriptedAction[]>();
  private readonly behaviours = new Map<string, ModelBehaviour>();

  /** Appends actions to `model`'s queue. */
  script(model: string, actions: readonly ScriptedAction[]): void {
    const queue = this.queues.get(model) ?? [];
    queue.push(...actions);
    this.queues.set(model, queue);
  }

  /** Sets, or with `undefined` clears, `model`'s behaviour. */
  setBehaviour(model: string, behaviour: ModelBehaviour | undefined): void {
    if (behaviour) this.behaviours.set(model, { ...behaviour });
    else this.behaviours.delete(model);
  }

  /**
   * Consumes the next action for `model`: its own queue first, the `'*'`
   * queue only when its own is empty, so a wildcard script never steals a
   * turn from a model-specific one.
   */
  take(model: string): ScriptLookup {
    const action = this.queues.get(model)?.shift() ?? this.queues.get(ANY_MODEL)?.shift();
    const behaviour = this.behaviours.get(model) ?? this.behaviours.get(ANY_MODEL);
    return { action, behaviour };
  }

  /** Drops every queued action and behaviour. */
  clear(): void {
    this.queues.clear();
    this.behaviours.clear();
  }
}

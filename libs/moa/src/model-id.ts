/** A model id split into the provider that serves it and the id that provider knows it by. */
export interface ParsedModelId {
  /** Name of the provider in the config, e.g. `together`. */
  provider: string;
  /** The model id passed to the provider unchanged, e.g. `Qwen/Qwen2.5-72B-Instruct-Turbo`. */
  model: string;
}

/**
 * Splits `<provider>/<model>` at the first `/`: the first segment names the
 * provider and the rest is passed to it unchanged, because provider model ids
 * contain slashes themselves (`together/Qwen/Qwen2.5-72B-Instruct-Turbo`).
 *
 * @throws Error naming the id when there is no `/` or either part is empty.
 */
export function parseModelId(id: string): ParsedModelId {
  const slash = id.indexOf('/');
  const provider = slash === -1 ? '' : id.slice(0, slash);
  const model = slash === -1 ? '' : id.slice(slash + 1);
  if (provider.trim() === '' || model.trim() === '') {
    throw new Error(
      `Invalid model id ${JSON.stringify(id)}: expected "<provider>/<model>", e.g. "together/Qwen/Qwen2.5-72B-Instruct-Turbo"`,
    );
  }
  return { provider, model };
}

/** One problem found in a MoA config: where it is and what is wrong with it. */
export interface ConfigIssue {
  /** Dotted field path such as `presets.moa.layers.0.1.model`; empty for the file as a whole. */
  path: string;
  /** What is wrong, e.g. `required` or `unknown provider "foo"`. */
  reason: string;
}

/** Options of {@link ConfigError} beyond the standard `cause`. */
export interface ConfigErrorOptions extends ErrorOptions {
  /** Further problems found in the same pass, so one start-up reports them all. */
  moreIssues?: ConfigIssue[];
}

/**
 * An invalid MoA config file (or config object). It stops the process at start,
 * so its message names the source and the field to fix:
 * `Invalid MoA config (moa.yaml): presets.moa.aggregator.model: required`.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  /** The file (or other source) the config came from. */
  readonly source: string;
  /** Dotted path of the first offending field; empty when the problem is the file as a whole. */
  readonly path: string;
  /** Every problem found, the first one being the one `path` names. */
  readonly issues: readonly ConfigIssue[];

  /**
   * @param source - The file or other origin of the config, named in the message.
   * @param path - Dotted path of the offending field, or `''` for the whole file.
   * @param reason - What is wrong with it.
   */
  constructor(source: string, path: string, reason: string, options: ConfigErrorOptions = {}) {
    const { moreIssues = [], ...errorOptions } = options;
    const issues = [{ path, reason }, ...moreIssues];
    const lines = issues.map((issue) =>
      issue.path === '' ? issue.reason : `${issue.path}: ${issue.reason}`,
    );
    // The first problem stays on the first line, where log viewers and tests look.
    super(`Invalid MoA config (${source}): ${lines.join('\n  ')}`, errorOptions);
    this.source = source;
    this.path = path;
    this.issues = issues;
  }
}

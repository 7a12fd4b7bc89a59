/** Something with a `get(name)` for headers: a fetch `Headers` or a plain lookup. */
export interface HeaderLookup {
  get(name: string): string | null | undefined;
}

/** Parses OpenAI-style durations of `x-ratelimit-reset-*`: `1s`, `6m0s`, `20ms`, `1h2m`. */
function parseResetDuration(value: string): number | undefined {
  const pattern = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let matched = false;
  for (const match of value.matchAll(pattern)) {
    matched = true;
    const amount = Number(match[1]);
    const unit = match[2];
    total += amount * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
  }
  if (matched) return total;
  const seconds = Number(value);
  return Number.isFinite(seconds) ? seconds * 1000 : undefined;
}

/**
 * How long a provider asked us to wait, in milliseconds: `retry-after-ms`,
 * then `retry-after` (seconds or an HTTP date), then the larger of the
 * `x-ratelimit-reset-requests` / `x-ratelimit-reset-tokens` durations.
 * Undefined when no header says.
 */
export function retryAfterMsFromHeaders(
  headers: HeaderLookup | undefined,
  now = Date.now(),
): number | undefined {
  if (!headers) return undefined;
  const milliseconds = Number(headers.get('retry-after-ms'));
  if (headers.get('retry-after-ms') && Number.isFinite(milliseconds) && milliseconds >= 0)
    return milliseconds;
  const retryAfter = headers.get('retry-after');
  if (retryAfter) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
    const date = Date.parse(retryAfter);
    if (Number.isFinite(date)) return Math.max(0, date - now);
  }
  const resets = ['x-ratelimit-reset-requests', 'x-ratelimit-reset-tokens']
    .map((name) => headers.get(name))
    .filter((value): value is string => Boolean(value))
    .map(parseResetDuration)
    .filter((value): value is number => value !== undefined);
  return resets.length > 0 ? Math.max(...resets) : undefined;
}

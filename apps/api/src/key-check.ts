import { createHash, timingSafeEqual } from 'node:crypto';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * A check of a presented key against the configured API keys, the same way
 * the API's bearer auth does it: SHA-256 digests compared with
 * `timingSafeEqual` against every key, so neither length nor content (nor
 * which key matched) leaks through timing.
 */
export function createKeyCheck(apiKeys: string[]): (given: string) => boolean {
  const digests = apiKeys.map(digest);
  return (given) => {
    const candidate = digest(given);
    let valid = false;
    for (const known of digests) valid = timingSafeEqual(candidate, known) || valid;
    return valid;
  };
}

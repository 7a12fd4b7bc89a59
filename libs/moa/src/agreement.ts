/*
 * How much a layer's answers agree, for the early-stop policy: the mean,
 * over every pair of answers, of the Jaccard similarity of their normalized
 * token sets. An answer's tokens are its runs of letters and digits
 * (Unicode-aware), lowercased after NFKC normalization; punctuation, case
 * and repetition do not count, order does not either. Two identical answers
 * agree 1; answers with no word in common agree 0. Cheap, deterministic and
 * model-free: it recognises answers that say the same thing in nearly the
 * same words (short factual answers, code, numbers), not paraphrases.
 */

/** The normalized token set of an answer. */
export function tokenSet(text: string): Set<string> {
  return new Set(
    text
      .normalize('NFKC')
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? [],
  );
}

/** Jaccard similarity of two sets: |A ∩ B| / |A ∪ B|; two empty sets are identical (1). */
export function jaccard(left: ReadonlySet<string>, right: ReadonlySet<string>): number {
  if (left.size === 0 && right.size === 0) return 1;
  let shared = 0;
  for (const token of left) if (right.has(token)) shared += 1;
  return shared / (left.size + right.size - shared);
}

/**
 * Agreement (0..1) of a set of answers: the mean pairwise Jaccard similarity
 * of their token sets. Null for fewer than two answers: one answer agrees
 * with nothing, so it never stops a request early.
 */
export function agreementOf(answers: readonly string[]): number | null {
  if (answers.length < 2) return null;
  const sets = answers.map(tokenSet);
  let sum = 0;
  let pairs = 0;
  for (let left = 0; left < sets.length; left += 1) {
    for (let right = left + 1; right < sets.length; right += 1) {
      sum += jaccard(sets[left]!, sets[right]!);
      pairs += 1;
    }
  }
  return sum / pairs;
}

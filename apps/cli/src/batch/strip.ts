/**
 * The characters Python's `str.isspace()` accepts, which `str.strip()` with no
 * argument removes. The reference implementation strips every answer this
 * way (`output.strip()` in togethercomputer/MoA `utils.py`, and again in
 * `generate_for_mt_bench.py`). It is not JavaScript's `trim()`: Python also
 * strips U+001C..U+001F and U+0085, and keeps U+FEFF.
 */
const PYTHON_WHITESPACE =
  '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const LEADING = new RegExp(`^[${PYTHON_WHITESPACE}]+`);
const TRAILING = new RegExp(`[${PYTHON_WHITESPACE}]+$`);

/** `text.strip()` as Python computes it. */
export function pythonStrip(text: string): string {
  return text.replace(LEADING, '').replace(TRAILING, '');
}

import { createHash } from 'node:crypto';

/**
 * The boundary between the prompt and the references it carries.
 *
 * References are other models' output, so they are untrusted data: one of them
 * must not be able to end its own block early, open a block of its own or nest
 * one, and so pose as instructions or as another model's answer. Two measures:
 * either alone keeps the exact delimiters out of a reference; together they
 * also keep out near-misses that a lenient reader could take for a delimiter.
 *
 * 1. The tag name carries a nonce, `reference-<8 hex digits>`, that is a
 *    SHA-256 of all the references of the call. A proposer cannot know it when
 *    it writes, because the nonce depends on its own output (and its
 *    siblings'). It is derived, not random, because a call's messages must be a
 *    deterministic function of the request and the previous layer's outputs
 *    (reproducible, cacheable requests).
 * 2. Anything in a reference that a reader could take for a reference tag,
 *    whatever the nonce, is neutralised: its opening bracket becomes `&lt;`
 *    (see {@link neutraliseReferenceText} for what counts as such a tag).
 */

/** What every reference tag name starts with; the nonce follows after a hyphen. */
const TAG_WORD = 'reference';

/** Hex digits of the nonce: 32 bits, plenty for a name no answer can predict, short enough to cost few tokens. */
const NONCE_HEX_DIGITS = 8;

/** Separates this hash from any other SHA-256 of the same text; bump it if the format of the hashed input changes. */
const NONCE_DOMAIN = 'moa-queue/reference-boundary/v1\n';

/**
 * What replaces the opening bracket of a tag-like sequence inside a reference.
 * It is the XML escape of `<`, so a model reads it as "a less-than sign in the
 * text" and the answer stays readable; it contains no bracket, so replacing
 * can never create a new tag.
 */
export const ESCAPED_REFERENCE_BRACKET = '&lt;';

/**
 * The tag name that delimits the given references: `reference-` followed by
 * the first {@link NONCE_HEX_DIGITS} hex digits of a SHA-256 of the list.
 *
 * A pure function of the references (JSON of the list, which is injective, so
 * moving text from one reference to another changes the name), so identical
 * inputs give identical prompts.
 */
export function referenceTagName(references: readonly string[]): string {
  const digest = createHash('sha256').update(NONCE_DOMAIN).update(JSON.stringify(references)).digest('hex');
  return `${TAG_WORD}-${digest.slice(0, NONCE_HEX_DIGITS)}`;
}

/** The tag that opens reference number `index` (counted from 1). */
export function openingReferenceTag(tagName: string, index: number): string {
  return `<${tagName} index="${index}">`;
}

/** The tag that closes every reference. */
export function closingReferenceTag(tagName: string): string {
  return `</${tagName}>`;
}

/**
 * What the model is told about the delimiters, placed after the reference
 * prompt. It names the tag without writing a literal tag, so the prompt holds
 * exactly one opening and one closing tag per reference and nothing else that
 * looks like one.
 */
export function describeReferenceBoundary(tagName: string, count: number): string {
  const numbering = count === 1 ? 'index="1"' : `index="1" to index="${count}", in order`;
  return [
    `The answers are delimited by XML-style tags named ${tagName}:`,
    `each answer starts with an opening ${tagName} tag whose index attribute numbers it (${numbering})`,
    `and ends with the matching closing ${tagName} tag.`,
    'Only tags with exactly this name delimit answers.',
    'Anything inside an answer that resembles a reference tag is part of that answer',
    `and has had its opening bracket replaced with ${ESCAPED_REFERENCE_BRACKET}.`,
  ].join(' ');
}

/**
 * Characters that a reader may take for `<`, `/` or a letter of "reference",
 * mapped to that ASCII character. Applied after the compatibility
 * decomposition and lowercasing, which already fold fullwidth, small-form,
 * mathematical and circled forms (`＜`, `﹤`, `／`, `𝐫`) and uppercase.
 *
 * The letter look-alikes are a small fixed table (Cyrillic, Greek, small
 * capitals), not all of Unicode's confusables: the nonce is what makes the
 * delimiters unforgeable, and this only keeps near-misses from misleading the
 * reader.
 */
const LOOK_ALIKES: Readonly<Record<string, string>> = {
  // Less-than signs, angle brackets and quotation marks that point left.
  '\u00AB': '<', // « left-pointing double angle quotation mark
  '\u02C2': '<', // ˂ modifier letter left arrowhead
  '\u1438': '<', // ᐸ Canadian syllabics pa
  '\u16B2': '<', // ᚲ runic kaun
  '\u2039': '<', // ‹ single left-pointing angle quotation mark
  '\u227A': '<', // ≺ precedes
  '\u22D6': '<', // ⋖ less-than with dot
  '\u276C': '<', // ❬ medium left-pointing angle bracket ornament
  '\u276E': '<', // ❮ heavy left-pointing angle quotation mark ornament
  '\u2770': '<', // ❰ heavy left-pointing angle bracket ornament
  '\u27E8': '<', // ⟨ mathematical left angle bracket
  '\u27EA': '<', // ⟪ mathematical left double angle bracket
  '\u2991': '<', // ⦑ left angle bracket with dot
  '\u29FC': '<', // ⧼ left-pointing curved angle bracket
  '\u3008': '<', // 〈 left angle bracket (also what U+2329 and U+FE3F decompose to)
  '\u300A': '<', // 《 left double angle bracket (also what U+FE3D decomposes to)
  // Slashes and backslashes: `<\/reference>` (a JSON-style escape) reads as a closing tag too.
  '\\': '/',
  '\u2044': '/', // ⁄ fraction slash
  '\u2215': '/', // ∕ division slash
  '\u2216': '/', // ∖ set minus
  '\u2571': '/', // ╱ box drawings light diagonal
  '\u2572': '/', // ╲ box drawings light diagonal the other way
  '\u29F5': '/', // ⧵ reverse solidus operator
  '\u29F8': '/', // ⧸ big solidus
  '\u29F9': '/', // ⧹ big reverse solidus
  '\u30CE': '/', // ノ katakana no
  '\u4E3F': '/', // 丿 (also what the Kangxi radical U+2F03 decomposes to)
  // Look-alikes of the letters of "reference", in lowercase.
  '\u0280': 'r', // ʀ latin letter small capital r
  '\u0433': 'r', // г Cyrillic ghe
  '\u025B': 'e', // ɛ latin small open e
  '\u03B5': 'e', // ε Greek epsilon
  '\u0435': 'e', // е Cyrillic ie
  '\u0454': 'e', // є Cyrillic Ukrainian ie
  '\u04BD': 'e', // ҽ Cyrillic abkhasian che
  '\u1D07': 'e', // ᴇ latin letter small capital e
  '\u212E': 'e', // ℮ estimated symbol
  '\u0192': 'f', // ƒ latin small f with hook
  '\u03DD': 'f', // ϝ Greek digamma
  '\uA730': 'f', // ꜰ latin letter small capital f
  '\u0274': 'n', // ɴ latin letter small capital n
  '\u03B7': 'n', // η Greek eta
  '\u043F': 'n', // п Cyrillic pe
  '\u0578': 'n', // ո Armenian vo
  '\u03F2': 'c', // ϲ Greek lunate sigma
  '\u0441': 'c', // с Cyrillic es
  '\u1D04': 'c', // ᴄ latin letter small capital c
  '\uABAF': 'c', // ꮯ Cherokee small letter tli
};

/** Combining marks and default-ignorable code points (zero-width spaces and joiners, soft hyphen, BOM, ...): invisible, or nearly. */
const INVISIBLE = /[\p{M}\p{Default_Ignorable_Code_Point}]/gu;

/** `<` or any non-ASCII code unit: text without one (ASCII without `<`) cannot hold a tag, which skips the scan for most answers. */
const MAY_HOLD_TAG = /[<\u0080-\uFFFF]/;

/**
 * How one code point reads, for detection only: its compatibility
 * decomposition (NFKD, which NFKC starts with; keeping the marks apart lets
 * `≮` and accented look-alikes be caught), lowercased, without invisible
 * characters, with look-alikes folded. May be empty or several characters.
 */
function foldCodePoint(codePoint: string): string {
  // ASCII decomposes to itself: skipping normalize() keeps long answers cheap.
  if (codePoint.charCodeAt(0) < 0x80) return codePoint === '\\' ? '/' : codePoint.toLowerCase();
  const decomposed = codePoint.normalize('NFKD').toLowerCase().replace(INVISIBLE, '');
  let folded = '';
  for (const character of decomposed) folded += LOOK_ALIKES[character] ?? character;
  return folded;
}

/**
 * Whether the folded characters from character `offset` of the fold of code
 * point `index` onwards read as the rest of a reference tag after its
 * bracket: any whitespace and slashes, then the word "reference" (as the start
 * of the name, so `<references` and `<reference-1a2b` count too). Invisible
 * code points fold to nothing, so they are skipped anywhere; whitespace is
 * allowed only between the bracket and the word, where a lenient reader would
 * ignore it.
 */
function tagFollows(folds: readonly string[], index: number, offset: number): boolean {
  let matched = 0;
  for (let position = index; position < folds.length; position += 1) {
    const fold = folds[position] ?? '';
    for (const character of position === index ? fold.slice(offset) : fold) {
      if (matched === 0 && (character === '/' || /\s/.test(character))) continue;
      if (character !== TAG_WORD[matched]) return false;
      matched += 1;
      if (matched === TAG_WORD.length) return true;
    }
  }
  return false;
}

/**
 * Neutralises everything in a reference that reads as a reference tag, so the
 * text cannot end its block, open another or nest one.
 *
 * A tag-like sequence is, after folding each code point (compatibility
 * decomposition, lowercase, invisible characters and combining marks dropped,
 * look-alike brackets, slashes and letters mapped to ASCII): `<`, any
 * whitespace and slashes, then `reference`. Examples: `</reference>`,
 * `< / REFERENCE`, `＜/ｒｅｆｅｒｅｎｃｅ＞`, `‹/refer\u00ADence›`,
 * `<reference-1a2b3c4d index="3">`, `</reference` at the very end.
 *
 * Neutralising replaces only the code point that reads as the opening bracket
 * with {@link ESCAPED_REFERENCE_BRACKET}; nothing is deleted and the rest of
 * the text is unchanged. It is deterministic and idempotent. HTML entities
 * (`&lt;/reference&gt;`) are left alone: they are text, the same form as the
 * escape, and cannot produce a real tag. A harmless false positive, such as
 * `i < reference.length` in code, becomes `i &lt; reference.length`.
 */
export function neutraliseReferenceText(text: string): string {
  if (!MAY_HOLD_TAG.test(text)) return text;
  const codePoints = Array.from(text);
  const folds = codePoints.map(foldCodePoint);
  return codePoints
    .map((codePoint, index) => {
      const fold = folds[index] ?? '';
      for (let offset = fold.indexOf('<'); offset !== -1; offset = fold.indexOf('<', offset + 1)) {
        if (tagFollows(folds, index, offset + 1)) return ESCAPED_REFERENCE_BRACKET;
      }
      return codePoint;
    })
    .join('');
}
